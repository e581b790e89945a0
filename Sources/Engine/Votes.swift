// Votes.swift: turning many per-window votes into one delay, as the StereoCRW code does.

/// How per-window votes are combined into one delay.
/// (`allCases` lists the default first: the order of help texts and error messages.)
public enum VotePost: String, Sendable, CaseIterable, Codable {
    /// No votes: the windows' evidence (cross-power spectra for GCC-PHAT, band probabilities
    /// for the learned encoder) is summed over the span, or averaged with a time constant
    /// (`PipelineConfig.memorySeconds`), and one peak with sub-sample refinement is taken
    /// (see `EvidenceEstimator`).
    case pooled
    /// RANSAC-like mode (the paper's "mode"): see `VoteAggregator.mode`.
    case mode
    /// Plain average of the votes.
    case mean

    /// The post-processings computed from per-window votes (`VoteAggregator`); `pooled` is
    /// computed from evidence by `TDEPipeline`.
    public static let voteBased: [VotePost] = [.mode, .mean]
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
    /// Capacity of the preallocated sort scratch: `mode` on up to this many votes allocates
    /// nothing; larger (offline, `--whole`) vote sets use a temporary sorted copy.
    public let scratchCapacity: Int
    private let counts: UnsafeMutablePointer<Int32>
    private let sortScratch: UnsafeMutablePointer<Double>

    public init(candidates: Int = 1001, threshold: Double = 0.05, meanInlierRadius: Double = 0.5,
                scratchCapacity: Int = 16384) {
        precondition(candidates >= 1 && threshold >= 0 && scratchCapacity >= 0)
        self.candidates = candidates; self.threshold = threshold
        self.meanInlierRadius = meanInlierRadius; self.scratchCapacity = scratchCapacity
        counts = .allocate(capacity: candidates)
        sortScratch = .allocate(capacity: max(scratchCapacity, 1))
    }
    deinit { counts.deallocate(); sortScratch.deallocate() }

    /// Aggregates with the chosen method.
    public func aggregate(_ votes: UnsafeBufferPointer<Float>, post: VotePost) -> VoteResult {
        switch post {
        case .mode: return mode(votes)
        case .mean: return mean(votes)
        case .pooled: preconditionFailure("pooled evidence is aggregated by TDEPipeline, not from votes")
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

    /// RANSAC-like mode (see the type's documentation). Implementation: the votes are sorted
    /// once and each candidate's inliers found by binary search with the very predicate of the
    /// definition (`|v - c| <= threshold`, monotone on each side of `c` in floating point), so
    /// the counts, the chosen candidate and its inliers are those of the literal scan
    /// (`modeScan` in EngineTestSupport, the reference it is tested against), in
    /// O(n log n + candidates log n).
    public func mode(_ votes: UnsafeBufferPointer<Float>) -> VoteResult {
        let n = votes.count
        guard n > 0 else { return VoteResult(delay: 0, count: 0, inliers: 0) }
        if n <= scratchCapacity {
            for i in 0..<n { sortScratch[i] = Double(votes[i]) }
            VoteAggregator.heapSort(sortScratch, n)
            return modeSorted(UnsafeBufferPointer(start: sortScratch, count: n))
        }
        let sorted = votes.map { Double($0) }.sorted()
        return sorted.withUnsafeBufferPointer { modeSorted($0) }
    }

    /// In-place heapsort (allocation-free, O(n log n)).
    static func heapSort(_ a: UnsafeMutablePointer<Double>, _ n: Int) {
        @inline(__always) func swap(_ i: Int, _ j: Int) { let t = a[i]; a[i] = a[j]; a[j] = t }
        func sift(_ start: Int, _ end: Int) {
            var root = start
            while 2 * root + 1 < end {
                var child = 2 * root + 1
                if child + 1 < end && a[child] < a[child + 1] { child += 1 }
                if a[root] < a[child] { swap(root, child); root = child } else { return }
            }
        }
        guard n > 1 else { return }
        var s = n / 2 - 1
        while s >= 0 { sift(s, n); s -= 1 }
        var end = n - 1
        while end > 0 { swap(0, end); sift(0, end); end -= 1 }
    }

    /// `mode` on votes already sorted ascending.
    private func modeSorted(_ v: UnsafeBufferPointer<Double>) -> VoteResult {
        let n = v.count
        let lo = v[0], hi = v[n - 1], thr = threshold
        // first index where pred holds; pred is monotone false...true over the sorted votes
        func firstTrue(_ pred: (Double) -> Bool) -> Int {
            var a = 0, b = n
            while a < b { let m = (a + b) / 2; if pred(v[m]) { b = m } else { a = m + 1 } }
            return a
        }
        func range(_ c: Double) -> (Int, Int) {
            (firstTrue { $0 >= c || abs($0 - c) <= thr }, firstTrue { $0 > c && abs($0 - c) > thr })
        }
        var best: Int32 = -1
        for i in 0..<candidates {
            let (a, b) = range(candidate(i, lo, hi))
            let cnt = Int32(b - a)
            counts[i] = cnt
            if cnt > best { best = cnt }
        }
        let c = candidate(middleTied(best), lo, hi)
        let (a, b) = range(c)
        var sum = 0.0
        for j in a..<b { sum += v[j] }
        return VoteResult(delay: b > a ? sum / Double(b - a) : c, count: n, inliers: b - a)
    }

    /// Index of the middle candidate (`ties / 2` in increasing order) among those with `best`.
    private func middleTied(_ best: Int32) -> Int {
        var ties = 0
        for i in 0..<candidates where counts[i] == best { ties += 1 }
        var pick = ties / 2
        for i in 0..<candidates where counts[i] == best {
            if pick == 0 { return i }
            pick -= 1
        }
        return 0
    }

    @inline(__always) private func candidate(_ i: Int, _ lo: Double, _ hi: Double) -> Double {
        candidates == 1 ? lo : lo + (hi - lo) * Double(i) / Double(candidates - 1)
    }
}
