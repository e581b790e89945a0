// Votes.swift: turning many per-window votes into one delay, as the StereoCRW code does.

/// How per-window votes are combined into one delay.
public enum VotePost: String, Sendable, CaseIterable {
    /// RANSAC-like mode (the paper's "mode"): see `VoteAggregator.mode`.
    case mode
    /// Plain average of the votes.
    case mean
}

/// One aggregated delay with its support.
public struct VoteResult: Equatable, Sendable {
    /// Aggregated delay in samples (0 when there are no votes).
    public var delay: Double
    /// Number of votes aggregated.
    public var count: Int
    /// Votes that support `delay` (see `VoteAggregator` for the definition per method).
    public var inliers: Int
    /// `inliers / count` in [0, 1] (0 with no votes); used as the confidence.
    public var inlierFraction: Double { count > 0 ? Double(inliers) / Double(count) : 0 }
    public init(delay: Double, count: Int, inliers: Int) {
        self.delay = delay; self.count = count; self.inliers = inliers
    }
}

/// Vote aggregation exactly as the StereoCRW reference code:
/// - `mean`: plain average of the votes;
/// - `mode`: `candidates` (1001) evenly spaced candidates on [min vote, max vote] (both ends
///   included, like `linspace`); a vote is an inlier of a candidate when `|vote - c| <= threshold`
///   (0.05 samples); among the candidates with the most inliers take the middle one (index
///   `ties / 2` in increasing order); the answer is the mean of that candidate's inliers.
///
/// Confidence: for `mode`, the inlier fraction of the chosen candidate; for `mean`, the fraction
/// of votes within `meanInlierRadius` (default 0.5 samples) of the mean.
/// Holds its own scratch, so aggregation allocates nothing after `init`.
public final class VoteAggregator {
    /// Number of candidates for `mode` (1001 in the reference code).
    public let candidates: Int
    /// Inlier threshold in samples for `mode` (0.05 in the reference code).
    public let threshold: Double
    /// Radius in samples for the `mean` confidence.
    public let meanInlierRadius: Double
    private let counts: UnsafeMutablePointer<Int32>

    public init(candidates: Int = 1001, threshold: Double = 0.05, meanInlierRadius: Double = 0.5) {
        precondition(candidates >= 1 && threshold >= 0)
        self.candidates = candidates; self.threshold = threshold
        self.meanInlierRadius = meanInlierRadius
        counts = .allocate(capacity: candidates)
    }
    deinit { counts.deallocate() }

    /// Aggregates with the chosen method.
    public func aggregate(_ votes: UnsafeBufferPointer<Float>, post: VotePost) -> VoteResult {
        switch post {
        case .mode: return mode(votes)
        case .mean: return mean(votes)
        }
    }

    /// Plain average; confidence from votes within `meanInlierRadius` of it.
    public func mean(_ votes: UnsafeBufferPointer<Float>) -> VoteResult {
        let n = votes.count
        guard n > 0 else { return VoteResult(delay: 0, count: 0, inliers: 0) }
        var s = 0.0
        for v in votes { s += Double(v) }
        let m = s / Double(n)
        var inl = 0
        for v in votes where abs(Double(v) - m) <= meanInlierRadius { inl += 1 }
        return VoteResult(delay: m, count: n, inliers: inl)
    }

    /// Above this many votes `mode` counts inliers by binary search in a sorted copy
    /// (O(n log n), allocates the copy) instead of the O(n * candidates) scan; both give the
    /// same counts (the same comparisons, see `modeSorted`). Live spans stay below it.
    public var sortedThreshold = 8192

    /// RANSAC-like mode (see the type's documentation).
    public func mode(_ votes: UnsafeBufferPointer<Float>) -> VoteResult {
        let n = votes.count
        guard n > 0 else { return VoteResult(delay: 0, count: 0, inliers: 0) }
        if n > sortedThreshold { return modeSorted(votes) }
        var lo = Double(votes[0]), hi = lo
        for v in votes { let d = Double(v); if d < lo { lo = d }; if d > hi { hi = d } }
        let thr = threshold
        let m = candidates
        var best: Int32 = -1
        for i in 0..<m {
            let c = candidate(i, lo, hi)
            var cnt: Int32 = 0
            for v in votes where abs(Double(v) - c) <= thr { cnt += 1 }
            counts[i] = cnt
            if cnt > best { best = cnt }
        }
        var ties = 0
        for i in 0..<m where counts[i] == best { ties += 1 }
        var pick = ties / 2, chosen = 0
        for i in 0..<m where counts[i] == best {
            if pick == 0 { chosen = i; break }
            pick -= 1
        }
        let c = candidate(chosen, lo, hi)
        var s = 0.0, k = 0
        for v in votes where abs(Double(v) - c) <= thr { s += Double(v); k += 1 }
        return VoteResult(delay: k > 0 ? s / Double(k) : c, count: n, inliers: k)
    }

    /// `mode` for many votes: sort once, then per candidate find the inlier range by binary
    /// search with the very predicate the scan uses (`|v - c| <= threshold` is monotone on each
    /// side of `c` in floating point), so counts, the chosen candidate and its inliers match.
    func modeSorted(_ votes: UnsafeBufferPointer<Float>) -> VoteResult {
        let n = votes.count
        let sorted = votes.map { Double($0) }.sorted()
        let lo = sorted[0], hi = sorted[n - 1], thr = threshold
        return sorted.withUnsafeBufferPointer { v -> VoteResult in
            // first index where pred is true, pred monotone false...true
            func firstTrue(_ pred: (Double) -> Bool) -> Int {
                var a = 0, b = n
                while a < b { let m = (a + b) / 2; if pred(v[m]) { b = m } else { a = m + 1 } }
                return a
            }
            func range(_ c: Double) -> (Int, Int) {
                let start = firstTrue { $0 >= c || abs($0 - c) <= thr }
                let end = firstTrue { $0 > c && abs($0 - c) > thr }
                return (start, end)
            }
            var best: Int32 = -1
            for i in 0..<candidates {
                let (a, b) = range(candidate(i, lo, hi))
                let cnt = Int32(b - a)
                counts[i] = cnt
                if cnt > best { best = cnt }
            }
            var ties = 0
            for i in 0..<candidates where counts[i] == best { ties += 1 }
            var pick = ties / 2, chosen = 0
            for i in 0..<candidates where counts[i] == best {
                if pick == 0 { chosen = i; break }
                pick -= 1
            }
            let c = candidate(chosen, lo, hi)
            let (a, b) = range(c)
            var sum = 0.0
            for j in a..<b { sum += v[j] }
            return VoteResult(delay: b > a ? sum / Double(b - a) : c, count: n, inliers: b - a)
        }
    }

    @inline(__always) private func candidate(_ i: Int, _ lo: Double, _ hi: Double) -> Double {
        candidates == 1 ? lo : lo + (hi - lo) * Double(i) / Double(candidates - 1)
    }
}
