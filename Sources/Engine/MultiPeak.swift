// MultiPeak.swift: several sources from the per-window votes (a histogram of delays and its
// separated modes). With speech, different windows are dominated by different talkers, so the
// votes of a span pile up at several delays.
import Foundation

/// Settings of the multi-source search (`VoteHistogram.peaks`) and of `SourceTracker`.
public struct SourceSearchConfig: Equatable, Sendable {
    /// Largest number of sources reported per update (1...4; 0 = no search at all).
    public var maxSources: Int = 0
    /// Histogram resolution, samples.
    public var binSamples: Double = 0.5
    /// Votes within this many samples of a peak's centre support it (its share and centroid).
    public var radiusSamples: Double = 1.5
    /// Two sources closer than this (samples) are one: a peak suppresses its neighbourhood.
    public var minSeparationSamples: Double = 2.5
    /// A secondary peak needs at least this fraction of the votes ... (The defaults of this
    /// type were tuned on the tuning set, eval/devset.py; see docs/array-setup.md.)
    public var minShare: Double = 0.15
    /// ... and at least this many votes (weighted, after the memory decay). The strongest peak
    /// only needs to exist.
    public var minVotes: Double = 4
    /// A secondary peak also needs its votes concentrated: the vote density within
    /// `radiusSamples` of it at least this many times the density in the flanks (from
    /// `radiusSamples` to `3 * radiusSamples` away, bins not taken by a stronger peak). Room
    /// noise and reverberation spread their votes over a broad bump; a talker piles them up.
    public var minContrast: Double = 6.5
    /// Consecutive updates with a matching peak before a new track is published (born).
    public var birthUpdates: Int = 3

    public init() {}

    /// The largest `maxSources` accepted.
    public static let sourceLimit = 4
}

/// One mode of the vote distribution.
public struct SourcePeak: Equatable, Sendable {
    /// Centroid of the supporting votes, samples (positive = right channel later).
    public var delay: Double
    /// Supporting votes (weighted) divided by all votes, in [0, 1].
    public var share: Double
    /// Supporting votes (weighted).
    public var votes: Double
    public init(delay: Double, share: Double, votes: Double) {
        self.delay = delay; self.share = share; self.votes = votes
    }
}

/// A weighted histogram of delays over `[-maxDelay, maxDelay]` with exponential forgetting,
/// and the search for its separated modes. Votes are split linearly between the two nearest
/// bins, so a bin-weighted centroid equals the mean of the votes it covers. Preallocated:
/// `add`, `decay` and `peaks` allocate nothing.
public final class VoteHistogram {
    public let config: SourceSearchConfig
    /// Half range in samples.
    public let maxDelay: Double
    /// Number of bins.
    public let bins: Int
    private let raw: UnsafeMutablePointer<Double>
    private let smooth: UnsafeMutablePointer<Double>
    private let taken: UnsafeMutablePointer<Bool>
    private var total = 0.0

    /// A histogram for delays in `[-maxDelay, maxDelay]` samples.
    public init(maxDelay: Double, config: SourceSearchConfig) {
        precondition(maxDelay > 0 && config.binSamples > 0)
        self.config = config
        self.maxDelay = maxDelay
        bins = Int((2 * maxDelay / config.binSamples).rounded(.up)) + 1
        raw = .allocate(capacity: bins); raw.initialize(repeating: 0, count: bins)
        smooth = .allocate(capacity: bins); smooth.initialize(repeating: 0, count: bins)
        taken = .allocate(capacity: bins); taken.initialize(repeating: false, count: bins)
    }
    deinit { raw.deallocate(); smooth.deallocate(); taken.deallocate() }

    /// Total weight held.
    public var weight: Double { total }

    /// Empties the histogram.
    public func clear() { raw.update(repeating: 0, count: bins); total = 0 }

    /// Multiplies every weight by `factor` (exponential forgetting).
    public func decay(_ factor: Double) {
        for i in 0..<bins { raw[i] *= factor }
        total *= factor
    }

    @inline(__always) private func center(_ i: Int) -> Double { -maxDelay + Double(i) * config.binSamples }

    /// Adds one vote. Non-finite votes are ignored. A vote within half a sample of the range's
    /// ends (or beyond) counts in the total but in no bin: a window whose correlation peaks
    /// outside the searched lags votes for the nearest end, and such clipped votes would pile
    /// up into a sharp false source there.
    @inline(__always) public func add(_ delay: Double, weight w: Double = 1) {
        guard delay.isFinite else { return }
        guard abs(delay) < maxDelay - 0.5 else { total += w; return }
        let x = (min(maxDelay, max(-maxDelay, delay)) + maxDelay) / config.binSamples
        let i = min(bins - 1, Int(x))
        let f = x - Double(i)
        raw[i] += w * (1 - f)
        if i + 1 < bins { raw[i + 1] += w * f } else { raw[i] += w * f }
        total += w
    }

    /// Adds votes.
    public func add(_ votes: UnsafeBufferPointer<Float>) { for v in votes { add(Double(v)) } }

    /// The separated modes, strongest first, written to `out` (capacity >= `maxSources`);
    /// returns how many. Greedy: the highest bin of the smoothed histogram (triangular kernel
    /// of +-`radiusSamples`) not yet taken is a peak; its support is the raw weight within
    /// `radiusSamples` (bins not taken by a stronger peak), its delay the centroid of that
    /// support; the bins within `minSeparationSamples` of it are then taken. The strongest
    /// peak is always reported (when any vote exists); the others need `minShare` and
    /// `minVotes`.
    public func peaks(into out: UnsafeMutablePointer<SourcePeak>, maxSources: Int) -> Int {
        guard total > 1e-12, maxSources > 0 else { return 0 }
        let h = config.binSamples
        let r = max(1, Int((config.radiusSamples / h).rounded()))
        for i in 0..<bins {
            var s = 0.0
            for k in -r...r where i + k >= 0 && i + k < bins { s += Double(r + 1 - abs(k)) * raw[i + k] }
            smooth[i] = s
        }
        taken.update(repeating: false, count: bins)
        var n = 0
        while n < maxSources {
            var best = -1, bestV = 0.0
            for i in 0..<bins where !taken[i] && smooth[i] > bestV { bestV = smooth[i]; best = i }
            guard best >= 0 else { break }
            var m = 0.0, c = 0.0
            for k in -r...r {
                let j = best + k
                guard j >= 0, j < bins, !taken[j] else { continue }
                m += raw[j]; c += raw[j] * center(j)
            }
            let delay = m > 0 ? c / m : center(best)
            let share = m / total
            if n > 0 && (share < config.minShare || m < config.minVotes) { break }
            if n > 0 && config.minContrast > 0 {
                var fm = 0.0, fb = 0, cb = 0
                for k in -3 * r...3 * r {
                    let j = best + k
                    guard j >= 0, j < bins, !taken[j] else { continue }
                    if abs(k) <= r { cb += 1 } else { fm += raw[j]; fb += 1 }
                }
                let coreDensity = m / Double(max(1, cb)), flankDensity = fm / Double(max(1, fb))
                if coreDensity < config.minContrast * flankDensity {
                    // a broad bump: not a source; take its bins and look further
                    for k in -r...r where best + k >= 0 && best + k < bins { taken[best + k] = true }
                    continue
                }
            }
            out[n] = SourcePeak(delay: delay, share: min(1, share), votes: m)
            n += 1
            for i in 0..<bins where abs(center(i) - delay) <= config.minSeparationSamples { taken[i] = true }
            // The peak's own bins are always taken, even when its centroid sits between bins.
            for k in -r...r where best + k >= 0 && best + k < bins && abs(k) * 2 <= r { taken[best + k] = true }
        }
        return n
    }

    /// Convenience for offline use: the peaks of `votes`.
    public static func peaks(of votes: [Float], maxDelay: Double, config: SourceSearchConfig) -> [SourcePeak] {
        let hist = VoteHistogram(maxDelay: maxDelay, config: config)
        votes.withUnsafeBufferPointer { hist.add($0) }
        let out = UnsafeMutablePointer<SourcePeak>.allocate(capacity: max(1, config.maxSources))
        defer { out.deallocate() }
        let n = hist.peaks(into: out, maxSources: config.maxSources)
        return Array(UnsafeBufferPointer(start: out, count: n))
    }
}
