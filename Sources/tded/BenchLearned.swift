// `tded bench` section for the learned method: real-time factor of LearnedEstimator at step 1
// on the right and a vote every 8 samples on the left, per-layer cost per column, and the
// fraction of this machine's single-thread SGEMM peak that the layers reach.

import COpenBLAS
import Engine
import Foundation
import LiveTDE

/// Benchmark of the learned estimator (one thread).
enum LearnedBench {
    struct LayerFigure {
        let index: Int
        let shape: String
        let nsPerColumn: Double
        let gflops: Double
    }

    struct Result {
        let modelDescription: String
        let audioSeconds: Double
        let wallSeconds: Double              // thread CPU seconds of the best pass
        let elapsedSeconds: Double           // wall-clock seconds of that pass
        let updates: Int
        let realTimeFactor: Double           // audio seconds per wall second
        let nsPerSample: Double              // per stereo sample
        let layers: [LayerFigure]
        let otherNsPerColumn: Double         // features + pooling, per column
        let columnsPerSecondOfAudio: Double
        let layerGflops: Double              // achieved in the layers
        let peakGflops: Double               // large square SGEMM
        let shapeGflops: Double              // SGEMM at a 3-tap layer's shape on the right channel
        let blasConfig: String
        let rightGroup: Int
    }

    /// Thread CPU time, ns: the figures are per core of CPU actually used, so other processes
    /// time-sliced onto the same core do not inflate them.
    static func now() -> UInt64 { ThreadCPUClock.nanoseconds() }
    static func wallNow() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

    /// Single-thread SGEMM throughput (GFLOP/s) for C[m x n] += A[m x k] B[k x n], best of `reps`.
    static func sgemmGflops(m: Int, n: Int, k: Int, reps: Int) -> Double {
        var a = [Float](repeating: 0, count: m * k), b = [Float](repeating: 0, count: k * n)
        var c = [Float](repeating: 0, count: m * n)
        for i in a.indices { a[i] = Float(i % 7) * 0.01 }
        for i in b.indices { b[i] = Float(i % 5) * 0.01 }
        var best = Double.infinity
        for _ in 0..<reps {
            let t0 = now()
            cblas_sgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k), 1,
                        &a, Int32(m), &b, Int32(k), 1, &c, Int32(m))
            best = min(best, Double(now() - t0))
        }
        return 2 * Double(m) * Double(n) * Double(k) / best
    }

    /// Runs the benchmark on `seconds` of seeded stereo noise (right = left delayed 3 samples),
    /// fed in blocks of `block` samples per channel.
    static func run(model: EncoderModel, description: String, seconds: Double = 10, block: Int = 800,
                    voteStride: Int = 8, maxBlock: Int = 256, repeats: Int = 5,
                    rightGroup: Int = LearnedEstimator.Options.defaultRightGroupColumns) throws -> Result {
        let rate = model.sampleRate
        let n = Int(seconds * Double(rate))
        var state: UInt64 = 0x9E3779B97F4A7C15
        var base = [Float](repeating: 0, count: n + 3)
        for i in base.indices {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            base[i] = Float(Int64(bitPattern: state >> 11) % 2000 - 1000) * 0.0002
        }
        let left = Array(base[3...]), right = Array(base[0..<n])
        let est = try LearnedEstimator(model: model, options: .init(voteStride: voteStride, maxBlock: maxBlock,
                                                                    rightGroupColumns: rightGroup))
        let pipeline = try TDEPipeline(estimator: est)
        /// One pass over the clip through the same pipeline the daemon uses; returns wall ns and updates.
        var lastElapsed: UInt64 = 0
        func pass(profile: Bool) -> (UInt64, Int) {
            pipeline.reset()
            est.leftEncoder.profile = profile
            est.rightEncoder.profile = profile
            var total = 0
            let w0 = wallNow()
            let t0 = now()
            var i = 0
            left.withUnsafeBufferPointer { l in
                right.withUnsafeBufferPointer { r in
                    while i < n {
                        let m = min(block, n - i)
                        pipeline.process(left: UnsafeBufferPointer(rebasing: l[i..<i + m]),
                                         right: UnsafeBufferPointer(rebasing: r[i..<i + m])) { _ in total += 1 }
                        i += m
                    }
                }
            }
            let t = now() - t0
            lastElapsed = wallNow() - w0
            return (t, total)
        }
        _ = pass(profile: false)                 // warm caches and OpenBLAS buffers
        var wall = UInt64.max, voteCount = 0, elapsed: UInt64 = 0
        for _ in 0..<repeats {
            let (t, v) = pass(profile: false)
            if t < wall { wall = t; voteCount = v; elapsed = lastElapsed }
        }
        // Per-layer split: best (least disturbed) of several profiled passes, per layer.
        let L = model.layers.count
        var best = [Double](repeating: .infinity, count: L + 1)
        var cols = 0.0
        for _ in 0..<repeats {
            _ = pass(profile: true)
            cols = Double(est.leftEncoder.columnsProcessed + est.rightEncoder.columnsProcessed)
            for i in 0...L {
                best[i] = min(best[i], Double(est.leftEncoder.layerNanos[i] + est.rightEncoder.layerNanos[i]))
            }
        }
        est.leftEncoder.profile = false
        est.rightEncoder.profile = false
        var layers: [LayerFigure] = []
        var layerNs = 0.0, layerFlops = 0.0
        for (i, l) in model.layers.enumerated() {
            let ns = best[i]
            let flops = 2.0 * Double(l.inChannels * l.outChannels * l.kernel) * cols
            layerNs += ns; layerFlops += flops
            layers.append(LayerFigure(index: i, shape: "\(l.inChannels)->\(l.outChannels) k\(l.kernel) d\(l.dilation)",
                                      nsPerColumn: ns / cols, gflops: flops / ns))
        }
        let other = best[L]
        let peak = sgemmGflops(m: 1536, n: 1536, k: 1536, reps: 15)
        let w = model.layers.map { $0.outChannels }.max() ?? 128
        let kk = model.layers.map { $0.inChannels }.max() ?? 128
        let shape = sgemmGflops(m: w, n: rightGroup, k: 3 * kk, reps: 400)
        let cfg = "\(BLASRuntime.coreName) kernels, \(BLASRuntime.threads) thread(s)"
        return Result(modelDescription: description, audioSeconds: seconds, wallSeconds: Double(wall) / 1e9, elapsedSeconds: Double(elapsed) / 1e9,
                      updates: voteCount, realTimeFactor: seconds / (Double(wall) / 1e9),
                      nsPerSample: Double(wall) / Double(n), layers: layers, otherNsPerColumn: other / cols,
                      columnsPerSecondOfAudio: cols / seconds, layerGflops: layerFlops / layerNs,
                      peakGflops: peak, shapeGflops: shape, blasConfig: cfg, rightGroup: rightGroup)
    }

    /// The `tded bench` section: loads the default model (ModelLoader lookup: $TDED_MODEL, then
    /// the shipped models/tded-stream-v1.safetensors), runs, prints; a missing model is
    /// reported and skipped rather than failing the GCC-PHAT figures.
    static func section(seconds: Double, block: Int, checkAlloc: Bool,
                        rightGroup: Int = LearnedEstimator.Options.defaultRightGroupColumns) {
        let loaded: (model: EncoderModel, path: String)
        do { loaded = try ModelLoader.loadModel(explicit: nil) } catch {
            print("  learned: skipped: \(error)")
            return
        }
        do {
            let r = try run(model: loaded.model, description: "\(loaded.path) (\(loaded.model.layers.count) layers, "
                            + "R \(loaded.model.receptiveField), M \(loaded.model.poolCount), "
                            + "\(loaded.model.macsPerColumn) MACs/column)",
                            seconds: seconds, block: block, rightGroup: rightGroup)
            for line in report(r) { print("  " + line) }
            if checkAlloc { allocCheck(model: loaded.model, block: block) }
        } catch {
            print("  learned: failed: \(error)")
        }
    }

    /// Counts heap allocations during steady-state learned processing (LD_PRELOAD shim, see
    /// scripts/alloc-count.c and `Bench.allocCheck`).
    static func allocCheck(model: EncoderModel, block: Int) {
        guard let count = MallocCounter.load(label: "learned: alloc check") else { return }
        guard let est = try? LearnedEstimator(model: model), let p = try? TDEPipeline(estimator: est) else { return }
        let n = 16000 * 3, warm = 16000
        var x = [Float](repeating: 0, count: n + 5)
        var s: UInt64 = 7
        for i in x.indices { s = s &* 6364136223846793005 &+ 1442695040888963407; x[i] = Float(Int64(bitPattern: s >> 11) % 1000) * 0.0003 }
        let left = Array(x[5...]), right = Array(x[0..<n])
        let m = MallocCounter.measure(count, pipeline: p, left: left, right: right, samples: n, warm: warm, block: block)
        print("  learned: alloc check: \(m.allocations) heap allocations in \(m.steadySamples) steady-state samples (result \(m.delaySum.isFinite ? "ok" : "nan"))\(m.allocatingBlocks.isEmpty ? "" : ", in blocks at \(m.allocatingBlocks)")")
    }

    /// Human-readable report lines.
    static func report(_ r: Result) -> [String] {
        func f(_ x: Double, _ d: Int = 1) -> String { String(format: "%.\(d)f", x) }
        var out: [String] = []
        out.append("learned: model \(r.modelDescription)")
        out.append("learned: \(f(r.audioSeconds)) s of 16 kHz stereo in \(f(r.wallSeconds, 3)) s of thread CPU time -> "
                   + "\(f(r.realTimeFactor))x real time on one core (\(f(r.nsPerSample)) ns/sample, \(r.updates) pipeline updates; "
                   + "wall clock \(f(r.elapsedSeconds, 3)) s on this shared machine)")
        out.append("learned: \(f(r.columnsPerSecondOfAudio, 0)) columns per second of audio (right every sample in SGEMMs of \(r.rightGroup) columns, "
                   + "left on the vote lattice in SGEMMs of \(StreamingEncoder.defaultGroupColumns))")
        for l in r.layers {
            out.append("learned:   layer \(l.index) \(l.shape): \(f(l.nsPerColumn)) ns/column, \(f(l.gflops)) GFLOP/s")
        }
        out.append("learned:   features+pooling: \(f(r.otherNsPerColumn)) ns/column")
        let peak = max(r.peakGflops, r.shapeGflops)
        out.append("learned: layers reach \(f(r.layerGflops)) GFLOP/s = \(f(100 * r.layerGflops / peak))% of this core's "
                   + "SGEMM peak \(f(peak)) GFLOP/s (best of a 1536^3 SGEMM: \(f(r.peakGflops)), and of one at a "
                   + "3-tap layer's shape, N = \(r.rightGroup): \(f(r.shapeGflops)))")
        out.append("learned: OpenBLAS \(r.blasConfig) (see the machine: lines above)")
        return out
    }
}
