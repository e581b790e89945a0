// Pipeline.swift: estimator -> votes of the last span -> mode/mean -> azimuth -> smoother.
import Foundation

/// Settings of `TDEPipeline`. Defaults: 16 kHz, an update every 800 samples (20 Hz), each
/// update aggregating the votes of every window that lies inside the last 1600 samples
/// (0.1 s; 577 windows at step 1 with 1024-sample windows), `mode` post-processing, a 0.1 m
/// array, c = 343 m/s.
public struct PipelineConfig: Equatable, Sendable {
    /// Engine sample rate in Hz.
    public var sampleRate: Double = 16000
    /// Samples between updates. Updates happen after samples `hop, 2*hop, ...` of the stream.
    public var updateHop: Int = 800
    /// Audio span (samples) analysed by each update: the windows `[s, s + window)` that end
    /// at most `voteLatency` samples before the update and start within the span vote.
    /// Must be >= the estimator's window length.
    public var analysisSpan: Int = 1600
    /// How the span's votes are combined.
    public var post: VotePost = .mode
    /// With `post = pooled` only: 0 pools the evidence of the windows inside the last
    /// `analysisSpan` samples (like the votes of `mode`/`mean`); a positive value keeps an
    /// exponentially weighted sum of every window's evidence instead, with this time constant
    /// in seconds (each update adds the windows that completed since the previous update and
    /// multiplies the older sum by `exp(-updateHop / (memorySeconds * sampleRate))`).
    public var memorySeconds: Double = 0
    /// Cut-off in Hz of the input high-pass (`HighPassFilter`, both channels, before the
    /// estimator and the level); 0 = off. The daemon's and `tded analyze`'s default is
    /// `PipelineConfig.defaultHighpassHz`.
    public var highpassHz: Double = 0
    /// Microphone spacing (m) and speed of sound (m/s) for the azimuth.
    public var micDistance: Double = 0.1
    public var soundSpeed: Double = 343
    /// Updates whose span level (dBFS, mean of both channels) is below this are `silent`: the
    /// smoother holds instead of taking the measurement.
    public var silenceDb: Double = -60
    /// Updates whose confidence is below this are `lowConfidence`: the smoother holds. nil =
    /// the estimator's `defaultMinConfidence` (`TDEPipeline.minConfidence` is the value in effect).
    public var minConfidence: Double? = nil
    /// The published-stream smoother.
    public var smoother = SmootherConfig()
    /// Keep every vote for `wholeResult()` (offline `--whole`; grows memory with the stream).
    public var keepAllVotes: Bool = false
    /// Make an estimate at every update boundary and pass it to `process`'s callback; false
    /// when only `wholeResult()` is wanted (`tded analyze --whole`), which then costs one
    /// estimate per stream instead of one per update hop.
    public var perUpdateEstimates: Bool = true
    /// Several sources per update from the votes (`maxSources` 0 = off; see `MultiSourceStage`).
    public var sources = SourceSearchConfig()

    public init() {}

    /// The hold threshold of classical weightings and votes: updates below it carry no peak.
    public static let classicalMinConfidence = 0.05
    /// The hold threshold with the learned per-update weighting (`GCCPHAT` with
    /// `pooling = .learned`). Its confidences run higher (the mask drops noisy bins), and below
    /// this the estimate is mostly noise: on the live tuning sets holding there cut the error of
    /// the published delay by 0-37 % (docs/method.md, "Holding uncertain updates"); at 0.5 it
    /// held through real evidence.
    public static let learnedMinConfidence = 0.3

    /// The input high-pass of `tded` and the daemon (Hz): below it sound carries almost no delay
    /// information at array spacings, but rumble or a DC offset can mislead every estimator.
    public static let defaultHighpassHz = 100.0
}

/// Flags attached to an update.
public struct UpdateFlags: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// No vote fell in the analysis span (stream start): raw fields are 0.
    public static let noVotes = UpdateFlags(rawValue: 1 << 0)
    /// Span level below `silenceDb`.
    public static let silent = UpdateFlags(rawValue: 1 << 1)
    /// Confidence below `minConfidence`.
    public static let lowConfidence = UpdateFlags(rawValue: 1 << 2)
    /// |delay| beyond the physical range of the array; azimuth clamped to +-90.
    public static let beyondRange = UpdateFlags(rawValue: 1 << 3)
    /// The smoother did not take this measurement (held the previous value).
    public static let holding = UpdateFlags(rawValue: 1 << 4)
    /// The smoother has been holding for longer than its hold time.
    public static let stale = UpdateFlags(rawValue: 1 << 5)
    /// The measurement was rejected by the smoother's outlier gate.
    public static let gated = UpdateFlags(rawValue: 1 << 6)

    /// Flag names in a fixed order (for JSON output).
    public var names: [String] {
        var out: [String] = []
        let all: [(UpdateFlags, String)] = [(.noVotes, "no_votes"), (.silent, "silent"),
            (.lowConfidence, "low_confidence"), (.beyondRange, "beyond_range"),
            (.holding, "holding"), (.stale, "stale"), (.gated, "gated")]
        for (f, n) in all where contains(f) { out.append(n) }
        return out
    }
}

/// One published estimate.
public struct Update: Equatable, Sendable {
    /// Time in seconds of the end of the audio this update has seen (`sampleIndex / rate`).
    public var t: Double
    /// Samples per channel seen when the update was made (a multiple of `updateHop`, or the
    /// stream length for `wholeResult()`).
    public var sampleIndex: Int64
    /// Raw aggregated delay of the span's votes, samples (positive = right channel later).
    public var delaySamples: Double
    /// Same in milliseconds.
    public var delayMs: Double
    /// Azimuth of the raw delay, degrees, positive toward the LEFT mic (see `AzimuthConverter`).
    public var azimuthDeg: Double
    /// Inlier fraction of the aggregation, in [0, 1].
    public var confidence: Double
    /// Number of votes aggregated.
    public var votes: Int
    /// Level of the span, dBFS (mean power of both channels; -200 for digital silence).
    public var levelDb: Double
    /// Estimator name, e.g. "gcc-phat".
    public var method: String
    /// Post-processing used ("mode" or "mean").
    public var post: VotePost
    public var flags: UpdateFlags
    /// Smoothed delay (samples), its azimuth (degrees) and confidence, for the live stream.
    public var smoothedDelaySamples: Double
    public var smoothedAzimuthDeg: Double
    public var smoothedConfidence: Double
    /// The tracked sources (`PipelineConfig.sources`; not enabled when that search is off).
    public var sources = SourceList()

    public init(t: Double, sampleIndex: Int64, delaySamples: Double, delayMs: Double,
                azimuthDeg: Double, confidence: Double, votes: Int, levelDb: Double,
                method: String, post: VotePost, flags: UpdateFlags, smoothedDelaySamples: Double,
                smoothedAzimuthDeg: Double, smoothedConfidence: Double) {
        self.t = t; self.sampleIndex = sampleIndex; self.delaySamples = delaySamples
        self.delayMs = delayMs; self.azimuthDeg = azimuthDeg; self.confidence = confidence
        self.votes = votes; self.levelDb = levelDb; self.method = method; self.post = post
        self.flags = flags; self.smoothedDelaySamples = smoothedDelaySamples
        self.smoothedAzimuthDeg = smoothedAzimuthDeg; self.smoothedConfidence = smoothedConfidence
    }
}

/// The one processing pipeline shared by `tded analyze` and the live daemon, so that replaying
/// a file live gives the same answers as analysing it. Feed planar stereo blocks of any size;
/// updates come out through the callback every `updateHop` samples on a schedule fixed relative
/// to sample 0, so block boundaries never change the results. Steady state allocates nothing
/// (unless `keepAllVotes`).
public final class TDEPipeline {
    public let estimator: DelayEstimator
    public let config: PipelineConfig
    public let azimuth: AzimuthConverter
    /// The hold threshold in effect: `config.minConfidence`, else the estimator's default.
    public let minConfidence: Double
    /// Samples per channel consumed so far.
    public private(set) var samplesProcessed: Int64 = 0

    private let aggregator = VoteAggregator()
    private var smoother: DelaySmoother
    private let chunk: Int
    private let scratch: UnsafeMutableBufferPointer<Vote>
    private let ringCap: Int
    private let ring: UnsafeMutablePointer<Vote>
    private var ringCount: Int64 = 0
    private let gather: UnsafeMutablePointer<Float>
    private let energy: UnsafeMutablePointer<Float>   // ring of (l^2 + r^2) / 2, analysisSpan long
    private var allVotes: [Float] = []
    private var totalEnergy = 0.0                     // sum over the stream, for wholeResult()
    // Pooled evidence (post = pooled): per-window vectors in a ring parallel to the votes.
    private let pool: EvidenceEstimator?
    private let evLen: Int
    private let evScratch: UnsafeMutablePointer<Float>?
    private let evRing: UnsafeMutablePointer<Float>?
    private let evSum: UnsafeMutablePointer<Float>?     // one update's pooled vector
    private let evWhole: UnsafeMutablePointer<Double>?  // whole-stream sum (keepAllVotes)
    private var evWholeCount = 0
    // whole-stream sums of consecutive blocks of `evBlockWindows` windows, when the estimator
    // reads them (`EvidenceEstimator.wholeBlockWindows`; keepAllVotes only, grows with the stream)
    private let evBlockWindows: Int?
    private var evBlocks: [Double] = []
    private var evBlockCounts: [Int] = []
    /// Set when the stream outgrows `maxWholeBlocks`: its blocks are dropped.
    private var evBlocksOverflowed = false
    /// Blocks kept at most for `--whole` (480: 60 s in blocks of 125 windows at step 16, about
    /// 16 MB of sums); a longer stream is resolved without them (docs/gccmask-spec.md, 7b).
    public static let maxWholeBlocks = 480
    private var lastPooledEnd: Int64 = Int64.min       // memory mode: last window start added
    private var memoryWeight = 0.0                     // memory mode: decayed window count
    private let multi: MultiSourceStage?               // several sources (sources.maxSources > 0)
    private var highpass: HighPassFilter?              // input high-pass (config.highpassHz > 0)
    private let filtered: UnsafeMutablePointer<Float>  // 2 x chunk: the filtered block

    /// Creates a pipeline; throws `EngineConfigError` for an inconsistent configuration.
    public init(estimator: DelayEstimator, config: PipelineConfig = PipelineConfig()) throws {
        guard config.updateHop >= 1 else { throw EngineConfigError("update hop must be >= 1 sample") }
        guard config.analysisSpan <= 1 << 24, config.updateHop <= 1 << 24 else {
            throw EngineConfigError("analysis span and update hop must be at most 16777216 samples")
        }
        guard config.analysisSpan >= estimator.windowLength else {
            throw EngineConfigError("analysis span (\(config.analysisSpan) samples) must be at least the window length (\(estimator.windowLength))")
        }
        guard config.sampleRate > 0, config.micDistance > 0, config.soundSpeed > 0 else {
            throw EngineConfigError("sample rate, mic distance and sound speed must be positive")
        }
        self.estimator = estimator
        self.config = config
        self.minConfidence = config.minConfidence ?? estimator.defaultMinConfidence
        azimuth = AzimuthConverter(micDistance: config.micDistance, soundSpeed: config.soundSpeed,
                                   sampleRate: config.sampleRate)
        smoother = DelaySmoother(config: config.smoother)
        chunk = min(config.updateHop, 4096)
        guard config.highpassHz >= 0, config.highpassHz.isFinite else {
            throw EngineConfigError("high-pass cut-off must be 0 (off) or a positive number of Hz, got \(config.highpassHz)")
        }
        highpass = config.highpassHz > 0 ? try HighPassFilter(cutoffHz: config.highpassHz, sampleRate: config.sampleRate) : nil
        filtered = .allocate(capacity: 2 * chunk)
        scratch = .allocate(capacity: estimator.maxVotes(forBlockLength: max(chunk, 64)))
        // Votes of the span plus those newer than it (up to `voteLatency` samples of them:
        // released early, counted by a later update).
        var cap = (config.analysisSpan - estimator.windowLength + estimator.voteLatency) / estimator.voteStride + 2
        if config.post == .pooled {
            guard let ev = estimator as? EvidenceEstimator else {
                throw EngineConfigError("post pooled needs an estimator that yields evidence (\(estimator.name) does not)")
            }
            guard config.memorySeconds >= 0, config.memorySeconds.isFinite else {
                throw EngineConfigError("memory time constant must be a finite number of seconds >= 0")
            }
            // Memory mode adds every window completed since the previous update.
            if config.memorySeconds > 0 {
                cap = max(cap, (config.updateHop + estimator.voteLatency) / estimator.voteStride + 4)
            }
            pool = ev
            evLen = ev.evidenceLength
            let scratchVotes = estimator.maxVotes(forBlockLength: max(chunk, 64))
            let es = UnsafeMutablePointer<Float>.allocate(capacity: scratchVotes * evLen)
            es.initialize(repeating: 0, count: scratchVotes * evLen)
            evScratch = es
            ev.evidenceOutput = es
            let r = UnsafeMutablePointer<Float>.allocate(capacity: cap * evLen)
            r.initialize(repeating: 0, count: cap * evLen)
            evRing = r
            let sm = UnsafeMutablePointer<Float>.allocate(capacity: evLen)
            sm.initialize(repeating: 0, count: evLen)
            evSum = sm
            if config.keepAllVotes {
                let w = UnsafeMutablePointer<Double>.allocate(capacity: evLen)
                w.initialize(repeating: 0, count: evLen)
                evWhole = w
                evBlockWindows = ev.wholeBlockWindows.flatMap { $0 >= 1 ? $0 : nil }
            } else { evWhole = nil; evBlockWindows = nil }
        } else {
            pool = nil; evLen = 0; evScratch = nil; evRing = nil; evSum = nil; evWhole = nil; evBlockWindows = nil
        }
        ringCap = cap
        ring = .allocate(capacity: ringCap)
        gather = .allocate(capacity: ringCap)
        energy = .allocate(capacity: config.analysisSpan)
        energy.initialize(repeating: 0, count: config.analysisSpan)
        if config.sources.maxSources != 0 {
            let memory = config.post == .pooled && config.memorySeconds > 0
            multi = try MultiSourceStage(config: config.sources, smoother: config.smoother, maxDelay: estimator.maxDelay,
                memoryFactor: memory ? exp(-Double(config.updateHop) / (config.memorySeconds * config.sampleRate)) : nil)
        } else { multi = nil }
    }

    deinit {
        scratch.deallocate(); ring.deallocate(); gather.deallocate(); energy.deallocate(); filtered.deallocate()
        pool?.evidenceOutput = nil
        evScratch?.deallocate(); evRing?.deallocate(); evSum?.deallocate(); evWhole?.deallocate()
    }

    /// Forgets everything (estimator included); the next sample is position 0.
    public func reset() {
        estimator.reset(); smoother.reset()
        samplesProcessed = 0; ringCount = 0; allVotes.removeAll(); totalEnergy = 0
        energy.update(repeating: 0, count: config.analysisSpan)
        evSum?.update(repeating: 0, count: evLen)
        evWhole?.update(repeating: 0, count: evLen)
        evWholeCount = 0; lastPooledEnd = Int64.min; memoryWeight = 0
        evBlocks.removeAll(); evBlockCounts.removeAll(); evBlocksOverflowed = false
        multi?.reset()
        highpass?.reset()
    }

    /// Consumes one planar stereo block (equal lengths) and calls `onUpdate` for every update
    /// boundary crossed, in order (never with `perUpdateEstimates` off).
    public func process(left: UnsafeBufferPointer<Float>, right: UnsafeBufferPointer<Float>,
                        onUpdate: (Update) -> Void) {
        precondition(left.count == right.count, "left and right blocks differ in length")
        guard let lin = left.baseAddress, let rin = right.baseAddress else { return }
        let hop = Int64(config.updateHop)
        var i = 0
        while i < left.count {
            let toBoundary = Int(hop - samplesProcessed % hop)
            let n = min(left.count - i, toBoundary, chunk)
            // The block the estimator sees: the input, or its high-passed copy at offset 0.
            var lb = lin, rb = rin, at = i
            if highpass != nil {
                highpass!.process(lin + i, rin + i, filtered, filtered + chunk, count: n)
                lb = UnsafePointer(filtered); rb = UnsafePointer(filtered + chunk); at = 0
            }
            // level ring
            let span = config.analysisSpan
            for j in 0..<n {
                let a = lb[at + j], b = rb[at + j]
                let e = 0.5 * (a * a + b * b)
                energy[Int((samplesProcessed + Int64(j)) % Int64(span))] = e
                totalEnergy += Double(e)
            }
            let got = estimator.process(left: UnsafeBufferPointer(start: lb + at, count: n),
                                        right: UnsafeBufferPointer(start: rb + at, count: n),
                                        votes: scratch)
            storeVotes(got)
            samplesProcessed += Int64(n)
            i += n
            if samplesProcessed % hop == 0 && config.perUpdateEstimates { onUpdate(makeUpdate()) }
        }
    }

    /// End of stream (offline analysis): collects the votes the estimator still holds back
    /// (see `DelayEstimator.flush(votes:)`) so `wholeResult()` counts every window of the
    /// input. Publishes no update.
    public func finish() {
        storeVotes(estimator.flush(votes: scratch))
    }

    /// Moves the first `got` votes of `scratch` into the vote ring (and the whole-stream list).
    private func storeVotes(_ got: Int) {
        for k in 0..<got {
            let slot = Int(ringCount % Int64(ringCap))
            ring[slot] = scratch[k]
            if let r = evRing, let es = evScratch {
                (r + slot * evLen).update(from: es + k * evLen, count: evLen)
                if let w = evWhole {
                    let e = es + k * evLen
                    if let bw = evBlockWindows, !evBlocksOverflowed, evWholeCount % bw == 0,
                       evBlockCounts.count >= Self.maxWholeBlocks {
                        // a long file: fold the blocks into the whole sum and drop them; the
                        // estimator then resolves the whole sum alone
                        foldBlocks(into: w)
                        evBlocksOverflowed = true
                        evBlocks = []; evBlockCounts = []
                    }
                    if let bw = evBlockWindows, !evBlocksOverflowed {
                        // the blocks hold the whole sum until wholeResult() adds them up (so a
                        // window is added once, not twice)
                        if evWholeCount % bw == 0 {
                            evBlocks.append(contentsOf: repeatElement(0, count: evLen)); evBlockCounts.append(0)
                        }
                        let b = evBlockCounts.count - 1
                        evBlocks.withUnsafeMutableBufferPointer { p in
                            let q = p.baseAddress! + b * evLen
                            for j in 0..<evLen { q[j] += Double(e[j]) }
                        }
                        evBlockCounts[b] += 1
                    } else {
                        for j in 0..<evLen { w[j] += Double(e[j]) }
                    }
                    evWholeCount += 1
                }
            }
            ringCount += 1
        }
        if config.keepAllVotes { for k in 0..<got { allVotes.append(scratch[k].delay) } }
    }

    /// Adds the kept blocks' sums to `w` (zeroed first), block by block.
    private func foldBlocks(into w: UnsafeMutablePointer<Double>) {
        w.update(repeating: 0, count: evLen)
        evBlocks.withUnsafeBufferPointer { p in
            for b in 0..<evBlockCounts.count {
                let q = p.baseAddress! + b * evLen
                for j in 0..<evLen { w[j] += q[j] }
            }
        }
    }

    /// Array convenience for offline use; returns all updates.
    public func process(left: [Float], right: [Float]) -> [Update] {
        var out: [Update] = []
        left.withUnsafeBufferPointer { l in
            right.withUnsafeBufferPointer { r in process(left: l, right: r) { out.append($0) } }
        }
        return out
    }

    /// One estimate from every vote of the stream so far (`--whole`); its level is that of the
    /// whole stream and the smoother is not involved. Requires `keepAllVotes`.
    public func wholeResult() -> Update {
        precondition(config.keepAllVotes, "wholeResult() needs keepAllVotes")
        let level = levelDb(totalEnergy, Int(samplesProcessed))
        if let ev = pool, let w = evWhole, let sm = evSum {
            let blocked = evBlockWindows != nil && !evBlocksOverflowed
            if blocked { foldBlocks(into: w) }
            for j in 0..<evLen { sm[j] = Float(w[j]) }
            let res = pooledResult(ev, sm, count: evWholeCount, blocks: blocked ? evBlocks.map { Float($0) } : [],
                                   blockWindows: evBlockCounts)
            return makeUpdate(result: res, level: level, useSmoother: false)
        }
        let res = allVotes.withUnsafeBufferPointer { aggregator.aggregate($0, post: config.post) }
        return makeUpdate(result: Aggregate(res), level: level, useSmoother: false)
    }

    /// The sources of every vote of the stream so far (`--whole`, no tracking; empty and not
    /// enabled when the multi-source search is off). Requires `keepAllVotes`.
    public func wholeSources() -> SourceList {
        precondition(config.keepAllVotes, "wholeSources() needs keepAllVotes")
        guard multi != nil else { return SourceList() }
        return MultiSourceStage.whole(votes: allVotes, maxDelay: estimator.maxDelay, config: config.sources, azimuth: azimuth)
    }

    private func levelDb(_ sum: Double, _ n: Int) -> Double {
        guard n > 0 else { return -200 }
        let p = sum / Double(n)
        return p > 1e-20 ? 10 * log10(p) : -200
    }

    private func makeUpdate() -> Update {
        // votes whose windows lie in [end - span, end), end = now - latency
        let end = samplesProcessed - Int64(estimator.voteLatency)
        let lo = end - Int64(config.analysisSpan)
        let hi = end - Int64(estimator.windowLength)
        var n = 0
        let avail = min(ringCount, Int64(ringCap))
        var k = ringCount - avail
        while k < ringCount {
            let v = ring[Int(k % Int64(ringCap))]
            if v.start >= lo && v.start <= hi { gather[n] = v.delay; n += 1 }
            k += 1
        }
        multi?.collect(ring: ring, capacity: ringCap, count: ringCount, lo: lo, hi: hi)
        let res: Aggregate
        if let ev = pool { res = pooledUpdate(ev, lo: lo, hi: hi) } else {
            res = Aggregate(aggregator.aggregate(UnsafeBufferPointer(start: gather, count: n), post: config.post))
        }
        let span = Int(min(Int64(config.analysisSpan), samplesProcessed))
        var total = 0.0
        for j in 0..<span { total += Double(energy[j]) }
        return makeUpdate(result: res, level: levelDb(total, span), useSmoother: true)
    }

    /// What an update reports of its span: one delay, the windows behind it, a confidence.
    private struct Aggregate {
        var delay: Double, count: Int, confidence: Double
        init(delay: Double, count: Int, confidence: Double) {
            self.delay = delay; self.count = count; self.confidence = confidence
        }
        init(_ r: VoteResult) { delay = r.delay; count = r.count; confidence = r.inlierFraction }
    }

    /// Windows whose evidence is empty (digital silence) give no delay: 0 at confidence 0, so
    /// the update is flagged `low_confidence` (and `silent`) and the smoother holds.
    /// `blocks` (whole stream only): the evidence of consecutive blocks of
    /// `EvidenceEstimator.wholeBlockWindows` windows, `blockWindows[b]` windows in block b.
    private func pooledResult(_ ev: EvidenceEstimator, _ v: UnsafeMutablePointer<Float>, count: Int,
                              blocks: [Float] = [], blockWindows: [Int] = []) -> Aggregate {
        guard count > 0 else { return Aggregate(delay: 0, count: 0, confidence: 0) }
        let resolved: PooledEstimate?
        if blocks.isEmpty {
            resolved = ev.resolve(pooled: v, windows: count)
        } else {
            resolved = blocks.withUnsafeBufferPointer { b in blockWindows.withUnsafeBufferPointer { c in
                ev.resolve(pooled: v, windows: count, blocks: b.baseAddress!, blockCount: c.count, blockWindows: c.baseAddress!)
            } }
        }
        guard let e = resolved else { return Aggregate(delay: 0, count: count, confidence: 0) }
        return Aggregate(delay: e.delay, count: count, confidence: e.confidence)
    }

    /// Pooled evidence of an update: windows with start in `[lo, hi]` (span mode), or the
    /// decayed sum plus the windows with start in `(last hi, hi]` (memory mode). Windows are
    /// added in increasing start order, so block sizes never change the sum.
    private func pooledUpdate(_ ev: EvidenceEstimator, lo: Int64, hi: Int64) -> Aggregate {
        guard let sm = evSum, let r = evRing else { return Aggregate(delay: 0, count: 0, confidence: 0) }
        let memory = config.memorySeconds > 0
        let from: Int64
        if memory {
            let a = Float(exp(-Double(config.updateHop) / (config.memorySeconds * config.sampleRate)))
            for j in 0..<evLen { sm[j] *= a }
            memoryWeight *= Double(a)
            from = lastPooledEnd == Int64.min ? Int64.min : lastPooledEnd + 1
            lastPooledEnd = max(lastPooledEnd, hi)
        } else {
            sm.update(repeating: 0, count: evLen)
            from = lo
        }
        var n = 0
        let avail = min(ringCount, Int64(ringCap))
        var k = ringCount - avail
        while k < ringCount {
            let slot = Int(k % Int64(ringCap))
            let s = ring[slot].start
            if s >= from && s <= hi {
                let e = r + slot * evLen
                for j in 0..<evLen { sm[j] += e[j] }
                n += 1
            }
            k += 1
        }
        if memory {
            memoryWeight += Double(n)
            return pooledResult(ev, sm, count: Int(memoryWeight.rounded(.up)))
        }
        return pooledResult(ev, sm, count: n)
    }

    private func makeUpdate(result res: Aggregate, level: Double, useSmoother: Bool) -> Update {
        let t = Double(samplesProcessed) / config.sampleRate
        var flags: UpdateFlags = []
        if res.count == 0 { flags.insert(.noVotes) }
        if level < config.silenceDb { flags.insert(.silent) }
        let confidence = res.confidence
        if res.count > 0 && confidence < minConfidence { flags.insert(.lowConfidence) }
        let az = azimuth.azimuth(delaySamples: res.delay)
        if res.count > 0 && az.beyondPhysicalRange { flags.insert(.beyondRange) }
        var sDelay = res.delay, sConf = confidence
        var sources = SourceList()
        if useSmoother {
            let usable = flags.isDisjoint(with: [.noVotes, .silent, .lowConfidence])
            if let m = multi { sources = m.step(t: t, usable: usable, azimuth: azimuth) }
            let st: DelaySmoother.State
            if usable {
                st = smoother.update(measurement: res.delay, confidence: confidence, t: t)
            } else {
                st = smoother.hold(t: t)
            }
            if st.holding { flags.insert(.holding) }
            if st.stale { flags.insert(.stale) }
            if st.gated { flags.insert(.gated) }
            sDelay = st.delay; sConf = st.confidence
        }
        var u = Update(t: t, sampleIndex: samplesProcessed, delaySamples: res.delay,
                      delayMs: res.delay / config.sampleRate * 1000, azimuthDeg: az.degrees,
                      confidence: confidence, votes: res.count, levelDb: level,
                      method: estimator.name, post: config.post, flags: flags,
                      smoothedDelaySamples: sDelay,
                      smoothedAzimuthDeg: azimuth.azimuth(delaySamples: sDelay).degrees,
                      smoothedConfidence: sConf)
        u.sources = useSmoother ? sources : wholeSources()
        return u
    }
}
