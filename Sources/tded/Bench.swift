// Bench.swift: `tded bench`: engine throughput (real-time factor, ns per sample), one thread.
import ArgumentParser
import CFFTW
import Engine
import Foundation
import LiveTDE

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure engine throughput on one thread (build with -c release).",
        discussion: """
        Runs GCC-PHAT at step 1 (and a few other configurations) on synthetic 16 kHz stereo \
        noise through the same TDEPipeline the daemon and `analyze` use, and prints the \
        real-time factor (audio seconds per second of this thread's CPU time, i.e. on one core, \
        and per wall-clock second; 10 = ten times faster than real time) and CPU ns per stereo \
        sample. Also times the FFTs alone, which bound the step-1 cost. \
        With --check-alloc, run under LD_PRELOAD of scripts/alloc-count.c to count heap \
        allocations during steady-state processing.
        """)

    @Option(help: "Seconds of audio per configuration.")
    var seconds: Double = 10

    @Option(help: "Block size in samples fed per call.")
    var block: Int = 256

    @Flag(help: "Only the default configuration (window 1024, step 1, +-24 lags).")
    var quick = false

    @Flag(name: .customLong("fftw-measure"), help: "Plan FFTs with FFTW_MEASURE instead of FFTW_ESTIMATE (the default, chosen for run-to-run identical results).")
    var fftwMeasure = false

    @Option(name: .customLong("learned-right-group"), help: "Columns per layer SGEMM on the learned encoder's every-sample channel (the engine's default if not given).")
    var learnedRightGroup: Int?

    @Flag(name: .customLong("check-alloc"), help: "Count mallocs in steady state (needs the LD_PRELOAD shim).")
    var checkAlloc = false

    @Flag(name: .customLong("alloc-only"), help: ArgumentHelp("Only an allocation check of step-16 pipelines with and without the multi-source tracker (tests; needs the LD_PRELOAD shim).", visibility: .hidden))
    var allocOnly = false

    struct Case { let name: String; let cfg: GCCPHATConfig }

    static func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

    /// CPU time of the calling thread, ns (excludes time other processes take from this core).
    static func cpuNow() -> UInt64 { ThreadCPUClock.nanoseconds() }

    func run() throws {
        if fftwMeasure { FFTWPlanner.flags = UInt32(FFTW_MEASURE) }
        let rate = 16000.0
        let n = Int(seconds * rate)
        var rng: UInt64 = 0x1234_5678
        func noise() -> Float {
            rng = rng &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int32(truncatingIfNeeded: rng >> 32)) / Float(Int32.max) * 0.3
        }
        var left = [Float](repeating: 0, count: n + 8), right = left
        for i in 0..<n { left[i + 8] = noise() }
        for i in 0..<n { right[i] = left[i] + 0.01 * noise() }   // right = left delayed by 8
        left = Array(left[8..<(n + 8)]); right = Array(right[0..<n])

        #if DEBUG
        print("warning: debug build; use `swift build -c release` for meaningful figures")
        #endif
        if allocOnly { try allocCheck(left, right, pairs: true); return }
        print("tded bench: \(Int(seconds)) s of 16 kHz stereo per configuration, blocks of \(block), one thread")
        for line in BenchEnvironment.lines() { print("  " + line) }
        var cases = [Case(name: "window 1024, step 1, +-24 lags, integer (paper), sliding DFT", cfg: GCCPHATConfig())]
        if !quick {
            cases += [
                Case(name: "window 1024, step 1, +-24 lags, integer, 2 FFTs per window", cfg: GCCPHATConfig(algorithm: .direct)),
                Case(name: "window 1024, step 1, +-24 lags, hann taper", cfg: GCCPHATConfig(taper: .hann)),
                Case(name: "window 1024, step 1, +-24 lags, parabolic", cfg: GCCPHATConfig(refinement: .parabolic)),
                Case(name: "window 1024, step 1, +-24 lags, upsampled x8", cfg: GCCPHATConfig(refinement: .upsampled(factor: 8))),
                Case(name: "window 2048, step 1, +-24 lags", cfg: GCCPHATConfig(window: 2048)),
                Case(name: "window 1024, step 8, +-24 lags", cfg: GCCPHATConfig(step: 8)),
            ]
        }
        for c in cases {
            var pc = PipelineConfig(); pc.analysisSpan = max(pc.analysisSpan, c.cfg.window + 576)
            let p = try TDEPipeline(estimator: try GCCPHAT(config: c.cfg), config: pc)
            var updates = 0, lastDelay = 0.0
            let t0 = Bench.now(), c0 = Bench.cpuNow()
            var i = 0
            left.withUnsafeBufferPointer { l in
                right.withUnsafeBufferPointer { r in
                    while i < n {
                        let m = min(block, n - i)
                        p.process(left: UnsafeBufferPointer(rebasing: l[i..<i + m]),
                                  right: UnsafeBufferPointer(rebasing: r[i..<i + m])) { u in
                            updates += 1; lastDelay = u.delaySamples
                        }
                        i += m
                    }
                }
            }
            let wall = Double(Bench.now() - t0) / 1e9, cpu = Double(Bench.cpuNow() - c0) / 1e9
            print(String(format: "  %@: RTF %.1fx (cpu time; wall %.1fx), %.0f ns/sample (%d updates, delay %.2f)",
                         c.name, seconds / cpu, seconds / wall, cpu * 1e9 / Double(n), updates, lastDelay))
        }
        // What bounds step 1: per sample, one complex inverse FFT of size `window` (the real
        // inverse of size 2*window done at half cost), plus O(window) spectrum work.
        for w in [1024, 2048] {
            let f = ForwardRealFFT(size: 2 * w), g = InverseComplexFFT(size: w)
            for j in 0..<(2 * w) { f.input[j] = noise() }
            let reps = 20000
            var t0 = Bench.cpuNow()
            for _ in 0..<reps { f.execute() }
            let fwd = Double(Bench.cpuNow() - t0) / Double(reps)
            t0 = Bench.cpuNow()
            for _ in 0..<reps { g.input.update(from: f.output, count: 2 * w); g.execute() }
            let inv = Double(Bench.cpuNow() - t0) / Double(reps)
            print(String(format: "  FFTW window %d: forward rFFT %d %.0f ns (exact resync only), inverse complex FFT %d %.0f ns (incl. copy; one per vote)",
                         w, 2 * w, fwd, w, inv))
        }
        if checkAlloc { try allocCheck(left, right) }
        LearnedBench.section(seconds: seconds, block: block, checkAlloc: checkAlloc,
                             rightGroup: learnedRightGroup ?? LearnedEstimator.Options.defaultRightGroupColumns)  // BenchLearned.swift
    }

    /// Counts heap allocations over steady-state pipeline processing (after warm-up). `pairs`:
    /// only step-16 pipelines, each with and without the multi-source tracker (what a test can
    /// afford on a debug build, whose baseline is not 0: the pairs must count the same).
    func allocCheck(_ left: [Float], _ right: [Float], pairs: Bool = false) throws {
        guard let count = MallocCounter.load(label: "alloc check") else { return }
        // sanity: the counter must see an allocation we know happens
        let probe0 = count()
        let probe = [Float](repeating: 1, count: 1000 + Int(seconds))
        let probed = count() - probe0
        print("  alloc check: counter sanity \(probed) allocation(s) for one array of \(probe.count) floats")
        // A second source taking turns with the first (0.2 s each, delay -5), so the multi-source
        // tracker's births, assignments and coasting run during the check too.
        var left = left, right = right
        var rng2: UInt64 = 0x9E37
        var src2 = [Float](repeating: 0, count: left.count + 5)
        for i in src2.indices {
            rng2 = rng2 &* 6364136223846793005 &+ 1442695040888963407
            src2[i] = Float(Int32(truncatingIfNeeded: rng2 >> 32)) / Float(Int32.max) * 0.3
        }
        for i in left.indices where (i / 3200) % 2 == 1 { left[i] = src2[i]; right[i] = src2[i + 5] }
        // The daemon's default: the learned per-update weighting (its shipped model), Hann windows.
        var learned: GCCPHATConfig? = nil
        if let models = try? ModelLoader.loadGccMask(explicit: nil, kind: .gccMaskLive).models {
            var c = GCCPHATConfig(step: 16, taper: .hann, pooling: EstimatorOptions.defaultLivePooling)
            c.poolingModels = models
            learned = c
        } else {
            print("  alloc check: no learned live pooling model found (\(ModelLoader.gccMaskLiveRelativePath)); its pipeline is not counted")
        }
        let classical = GCCPHATConfig(step: 16, taper: .hann, pooling: EstimatorOptions.classicalLivePooling)
        // (label, estimator, post, daemon-like: 0.2 s memory + high-pass, sources tracked)
        var cfgs: [(String, GCCPHATConfig, VotePost, Bool, Int)] = [
            ("step 16, pooled, phat+coh, 0.2 s memory, 2 sources, high-pass (classical default)", classical, .pooled, true, 2),
            ("step 1, pooled span", GCCPHATConfig(), .pooled, false, 0),
            ("step 1, mode, 4 sources", GCCPHATConfig(), .mode, false, 4),
            ("step 1, upsampled, hann, mean", GCCPHATConfig(refinement: .upsampled(factor: 8), taper: .hann), .mean, false, 0)]
        if let l = learned {
            cfgs.insert(("step 16, pooled, learned live model, 0.2 s memory, 2 sources, high-pass (default)", l, .pooled, true, 2), at: 0)
        }
        if pairs {
            var list = [("pooled memory", classical, VotePost.pooled, 0), ("pooled memory", classical, .pooled, 2),
                        ("mode", GCCPHATConfig(step: 16), .mode, 0), ("mode", GCCPHATConfig(step: 16), .mode, 4)]
            if let l = learned { list += [("learned memory", l, .pooled, 0), ("learned memory", l, .pooled, 2)] }
            for (name, cfg, post, sources) in list {
                var pc = PipelineConfig(); pc.post = post; pc.sources.maxSources = sources
                pc.highpassHz = PipelineConfig.defaultHighpassHz
                if post == .pooled { pc.memorySeconds = EstimatorOptions.defaultMemorySeconds }
                let p = try TDEPipeline(estimator: try GCCPHAT(config: cfg), config: pc)
                let m = MallocCounter.measure(count, pipeline: p, left: left, right: right,
                                              samples: min(left.count, 16000 * 3), warm: 16000, block: block)
                print("  alloc pair (step 16, \(name), \(sources) sources): \(m.allocations) heap allocations in \(m.steadySamples) steady-state samples")
            }
            return
        }
        for k in cfgs.indices {
            var pc = PipelineConfig(); pc.post = cfgs[k].2; pc.sources.maxSources = cfgs[k].4
            if cfgs[k].3 {
                pc.memorySeconds = EstimatorOptions.defaultMemorySeconds
                pc.highpassHz = PipelineConfig.defaultHighpassHz
            }
            let p = try TDEPipeline(estimator: try GCCPHAT(config: cfgs[k].1), config: pc)
            let m = MallocCounter.measure(count, pipeline: p, left: left, right: right,
                                          samples: min(left.count, 16000 * 3), warm: 16000, block: block)
            print("  alloc check (\(cfgs[k].0)): \(m.allocations) heap allocations in \(m.steadySamples) steady-state samples (result \(m.delaySum != 0 ? "ok" : "zero"))")
        }
        cfgs.removeAll()
    }
}
