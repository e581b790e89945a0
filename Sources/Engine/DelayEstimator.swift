// DelayEstimator.swift: the protocol every per-window delay estimator implements.

/// One per-window delay estimate.
public struct Vote: Equatable, Sendable {
    /// Absolute sample index (from stream start, 0) of the first sample of the window.
    public var start: Int64
    /// Delay in samples; positive = the right channel is later (source nearer the LEFT mic).
    public var delay: Float
    public init(start: Int64, delay: Float) { self.start = start; self.delay = delay }
}

/// A streaming estimator of the inter-channel delay that emits one vote per analysis window.
///
/// Contract (GCC-PHAT and the learned encoder both follow it):
/// - input is planar stereo `Float` blocks of any size; feeding the same stream in different
///   block sizes gives bit-identical votes (work is scheduled by absolute sample index);
/// - windows start at absolute positions `s` with `s % voteStride == 0`, span
///   `[s, s + windowLength)`; the vote for window `s` is emitted by the call that delivers
///   sample `s + windowLength - 1 + voteLatency`; votes come out in increasing `start` order;
/// - votes go into caller-owned storage; steady state allocates nothing.
public protocol DelayEstimator: AnyObject {
    /// Short method name used in output, e.g. `"gcc-phat"`.
    var name: String { get }
    /// Window length in samples.
    var windowLength: Int { get }
    /// Distance in samples between consecutive vote windows.
    var voteStride: Int { get }
    /// Largest |delay| in samples the estimator searches.
    var maxDelay: Int { get }
    /// Extra samples after a window's end needed before its vote can be emitted.
    var voteLatency: Int { get }
    /// Samples per channel consumed since creation or `reset()`.
    var samplesConsumed: Int64 { get }
    /// Upper bound on the votes one `process` call with `n` samples per channel can emit.
    func maxVotes(forBlockLength n: Int) -> Int
    /// Consumes `left.count == right.count` samples per channel and writes the votes that
    /// became available to `votes` (whose count must be at least `maxVotes(forBlockLength:)`).
    /// Returns the number of votes written.
    func process(left: UnsafeBufferPointer<Float>, right: UnsafeBufferPointer<Float>,
                 votes: UnsafeMutableBufferPointer<Vote>) -> Int
    /// The confidence below which the pipeline's published (smoothed) estimate holds instead of
    /// taking an update (`PipelineConfig.minConfidence` when that is nil): confidences are
    /// normalised correlations whose spread depends on the estimator's weighting.
    var defaultMinConfidence: Double { get }
    /// Forgets all state; the next sample is absolute position 0 again.
    func reset()
    /// End of stream: writes the votes still waiting for input that will not come (at most
    /// `maxVotes(forBlockLength: 64)`) and returns their number. Processing may continue
    /// afterwards. Estimators with nothing pending use the default, which writes none.
    func flush(votes: UnsafeMutableBufferPointer<Vote>) -> Int
}

extension DelayEstimator {
    public func flush(votes: UnsafeMutableBufferPointer<Vote>) -> Int { 0 }

    /// `PipelineConfig.classicalMinConfidence` unless the estimator says otherwise.
    public var defaultMinConfidence: Double { PipelineConfig.classicalMinConfidence }

    /// Convenience for tests and offline use: processes whole arrays, returns all votes.
    public func processAll(left: [Float], right: [Float], blockSize: Int = 4096) -> [Vote] {
        precondition(left.count == right.count && blockSize > 0)
        var out: [Vote] = []
        var scratch = [Vote](repeating: Vote(start: 0, delay: 0),
                             count: maxVotes(forBlockLength: blockSize))
        var i = 0
        while i < left.count {
            let n = min(blockSize, left.count - i)
            let got = left.withUnsafeBufferPointer { l in
                right.withUnsafeBufferPointer { r in
                    scratch.withUnsafeMutableBufferPointer { v in
                        process(left: UnsafeBufferPointer(rebasing: l[i..<i + n]),
                                right: UnsafeBufferPointer(rebasing: r[i..<i + n]), votes: v)
                    }
                }
            }
            out.append(contentsOf: scratch[0..<got])
            i += n
        }
        return out
    }
}
