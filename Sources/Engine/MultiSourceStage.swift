// MultiSourceStage.swift: the multi-source part of an update in `TDEPipeline`: votes ->
// histogram (span or exponential memory) -> peaks -> tracks.
import Foundation

/// What `TDEPipeline` runs per update when `PipelineConfig.sources.maxSources > 0`. The
/// histogram holds the votes of the update's span, or, with `post = pooled` and a memory time
/// constant, every vote weighted by `exp(-age / memorySeconds)` (the same memory as the pooled
/// evidence). Allocation-free after `init`.
final class MultiSourceStage {
    let config: SourceSearchConfig
    private let hist: VoteHistogram
    private let tracker: SourceTracker
    private let peakBuf: UnsafeMutablePointer<SourcePeak>
    private let memoryFactor: Double?       // per-update decay in memory mode
    private var lastEnd = Int64.min          // memory mode: last window start added

    init(config: SourceSearchConfig, smoother: SmootherConfig, maxDelay: Int, memoryFactor: Double?) throws {
        guard (1...SourceSearchConfig.sourceLimit).contains(config.maxSources) else {
            throw EngineConfigError("max sources must be 1...\(SourceSearchConfig.sourceLimit) (got \(config.maxSources))")
        }
        guard config.binSamples > 0, config.radiusSamples > 0, config.minSeparationSamples >= 0,
              config.minShare >= 0, config.minVotes >= 0, config.birthUpdates >= 1 else {
            throw EngineConfigError("multi-source search settings out of range")
        }
        self.config = config
        hist = VoteHistogram(maxDelay: Double(max(1, maxDelay)), config: config)
        tracker = SourceTracker(search: config, smoother: smoother)
        peakBuf = .allocate(capacity: SourceSearchConfig.sourceLimit)
        self.memoryFactor = memoryFactor
    }
    deinit { peakBuf.deallocate() }

    func reset() { hist.clear(); tracker.reset(); lastEnd = Int64.min }

    /// Takes the votes of the ring whose windows start in `[lo, hi]` (span mode) or the decayed
    /// histogram plus the votes that start in `(last hi, hi]` (memory mode).
    func collect(ring: UnsafePointer<Vote>, capacity: Int, count: Int64, lo: Int64, hi: Int64) {
        let from: Int64
        if let a = memoryFactor {
            hist.decay(a)
            from = lastEnd == Int64.min ? lo : lastEnd + 1
            lastEnd = max(lastEnd, hi)
        } else {
            hist.clear()
            from = lo
        }
        let avail = min(count, Int64(capacity))
        var k = count - avail
        while k < count {
            let v = ring[Int(k % Int64(capacity))]
            if v.start >= from && v.start <= hi { hist.add(Double(v.delay)) }
            k += 1
        }
    }

    /// Tracks this update's peaks (`usable`), or holds (silence, no votes, low confidence);
    /// returns the published sources.
    func step(t: Double, usable: Bool, azimuth: AzimuthConverter) -> SourceList {
        if usable {
            let n = hist.peaks(into: peakBuf, maxSources: config.maxSources)
            tracker.update(peaks: peakBuf, count: n, t: t)
        } else {
            tracker.hold(t: t)
        }
        return tracker.published(azimuth: azimuth)
    }

    /// The peaks of a whole stream's votes (`--whole`), ids 1, 2, ... strongest first;
    /// confidence = share (no tracking).
    static func whole(votes: [Float], maxDelay: Int, config: SourceSearchConfig, azimuth: AzimuthConverter) -> SourceList {
        var list = SourceList(enabled: true)
        let peaks = VoteHistogram.peaks(of: votes, maxDelay: Double(max(1, maxDelay)), config: config)
        for (i, p) in peaks.enumerated() {
            list.append(TrackedSource(id: i + 1, delaySamples: p.delay, delayMs: p.delay / azimuth.sampleRate * 1000,
                                      azimuthDeg: azimuth.azimuth(delaySamples: p.delay).degrees,
                                      confidence: p.share, share: p.share))
        }
        return list
    }
}
