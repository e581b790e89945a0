// Evidence.swift: per-window evidence that can be pooled over a span before one peak is taken
// (the `pooled` post-processing), and the estimate read from pooled evidence.

/// The delay read from evidence pooled over many windows.
public struct PooledEstimate: Equatable, Sendable {
    /// Delay in samples (positive = right channel later), with sub-sample refinement.
    public var delay: Double
    /// How concentrated the pooled evidence is at `delay`, in [0, 1] (see each estimator's
    /// `resolve` for its exact meaning). Used as the update's confidence.
    public var confidence: Double
    public init(delay: Double, confidence: Double) { self.delay = delay; self.confidence = confidence }
}

/// A `DelayEstimator` whose windows also yield a fixed-length evidence vector that can be
/// summed over windows (cross-power spectra for GCC-PHAT, band probabilities for the learned
/// encoder). Summing the evidence of a span and taking one peak keeps what per-window argmax
/// votes throw away: the support every other lag had in every window.
///
/// Contract:
/// - when `evidenceOutput` is set, `process` and `flush` write the evidence of the `k`-th vote
///   they emit at `evidenceOutput + k * evidenceLength` (storage for at least as many votes as
///   the `votes` buffer holds);
/// - evidence vectors are additive: the evidence of a span is the element-wise sum of its
///   windows' vectors (optionally weighted);
/// - `resolve` reads a pooled vector and allocates nothing.
public protocol EvidenceEstimator: DelayEstimator {
    /// Floats per window.
    var evidenceLength: Int { get }
    /// Where `process`/`flush` write the evidence of their votes; nil = do not write any.
    var evidenceOutput: UnsafeMutablePointer<Float>? { get set }
    /// The delay and confidence of pooled evidence (`evidenceLength` floats, a weighted sum of
    /// window vectors) of `windows` windows (for a decayed sum: its total weight, rounded up).
    /// `nil` when the evidence is empty or carries no information (all zero).
    func resolve(pooled: UnsafePointer<Float>, windows: Int) -> PooledEstimate?
    /// For a whole stream (`--whole`): how many consecutive pooled windows make one block whose
    /// evidence `resolve(pooled:windows:blocks:blockCount:blockWindows:)` also reads; nil (the
    /// default) = it reads none.
    var wholeBlockWindows: Int? { get }
    /// `resolve(pooled:windows:)` of a whole stream, also given the evidence of its consecutive
    /// blocks of `wholeBlockWindows` windows (`blockCount` vectors of `evidenceLength` floats;
    /// `blockWindows[b]` windows in block b, the last one possibly fewer). The default ignores
    /// them.
    func resolve(pooled: UnsafePointer<Float>, windows: Int, blocks: UnsafePointer<Float>, blockCount: Int,
                 blockWindows: UnsafePointer<Int>) -> PooledEstimate?
}

extension EvidenceEstimator {
    public var wholeBlockWindows: Int? { nil }
    public func resolve(pooled: UnsafePointer<Float>, windows: Int, blocks: UnsafePointer<Float>, blockCount: Int,
                        blockWindows: UnsafePointer<Int>) -> PooledEstimate? {
        resolve(pooled: pooled, windows: windows)
    }
}

/// Vertex offset in [-0.5, 0.5] of the parabola through (-1, a), (0, b), (1, c); 0 when the
/// three points are not a maximum.
@inline(__always)
func parabolicVertex(_ a: Double, _ b: Double, _ c: Double) -> Double {
    let den = a - 2 * b + c
    guard den < 0 else { return 0 }
    return min(0.5, max(-0.5, 0.5 * (a - c) / den))
}
