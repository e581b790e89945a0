// InputSanitizer.swift: the policy for non-finite and out-of-range values at the boundary
// between audio sources and the engine (docs/protocol.md, "Non-finite values").
import Engine

extension UpdateFlags {
    /// Some samples in the update's span were NaN or infinite and were replaced by 0.
    public static let nonfiniteInput = UpdateFlags(rawValue: 1 << 16)
    /// Some samples in the update's span were beyond full scale (|x| > 1) and were clipped.
    public static let clippedInput = UpdateFlags(rawValue: 1 << 17)
    /// The estimator returned a non-finite value; the numbers were replaced (see `sanitized`).
    public static let invalidEstimate = UpdateFlags(rawValue: 1 << 18)

    /// Names of the flags LiveTDE adds to the engine's, in output order.
    public static let inputFlagNames: [(UpdateFlags, String)] = [
        (.nonfiniteInput, "nonfinite_input"), (.clippedInput, "clipped_input"), (.invalidEstimate, "invalid_estimate"),
    ]

    /// Every flag with its output name, engine flags first: the order of `flags` in every
    /// JSON line (`JSONLine.flags`).
    public static let outputNames: [(UpdateFlags, String)] = [
        (.noVotes, "no_votes"), (.silent, "silent"), (.lowConfidence, "low_confidence"),
        (.beyondRange, "beyond_range"), (.holding, "holding"), (.stale, "stale"), (.gated, "gated"),
    ] + inputFlagNames

    /// Every flag name set, in output order.
    public var allNames: [String] { UpdateFlags.outputNames.filter { contains($0.0) }.map(\.1) }
}

/// Cleans stereo blocks before they reach the engine and flags the updates whose span held a
/// cleaned sample. Policy: NaN/Inf samples become 0 (counted, flag `nonfinite_input`); finite
/// samples beyond full scale are clipped to +-1 (counted, flag `clipped_input`), as a
/// fixed-point sound card would. Allocation- and lock-free: one pass over each block.
public final class InputSanitizer {
    /// Samples (per channel, both counted) replaced because they were not finite.
    public private(set) var nonfiniteSamples = 0
    /// Samples clipped to full scale.
    public private(set) var clippedSamples = 0
    // Stream positions (pipeline sample index) of the last bad sample before the current block
    // and the first/last in the current block; -1 = none.
    private var lastNonfinite: Int64 = -1, blockNonfinite: (Int64, Int64) = (-1, -1)
    private var lastClipped: Int64 = -1, blockClipped: (Int64, Int64) = (-1, -1)

    public init() {}

    /// Forgets positions (a new pipeline starts at sample 0); totals are kept.
    public func restartStream() {
        lastNonfinite = -1; lastClipped = -1; blockNonfinite = (-1, -1); blockClipped = (-1, -1)
    }

    /// Cleans `n` frames in place; `position` is the stream index of the first frame.
    public func clean(_ l: UnsafeMutablePointer<Float>, _ r: UnsafeMutablePointer<Float>, count n: Int, position: Int64) {
        lastNonfinite = max(lastNonfinite, blockNonfinite.1)
        lastClipped = max(lastClipped, blockClipped.1)
        blockNonfinite = (-1, -1); blockClipped = (-1, -1)
        cleanChannel(l, n, position)
        cleanChannel(r, n, position)
    }

    @inline(__always) private func cleanChannel(_ p: UnsafeMutablePointer<Float>, _ n: Int, _ position: Int64) {
        do {
            for j in 0..<n {
                let x = p[j]
                if x.isFinite && x.magnitude <= 1 { continue }
                let at = position + Int64(j)
                if !x.isFinite {
                    p[j] = 0
                    nonfiniteSamples += 1
                    note(&blockNonfinite, at)
                } else {
                    p[j] = x > 0 ? 1 : -1
                    clippedSamples += 1
                    note(&blockClipped, at)
                }
            }
        }
    }

    @inline(__always) private func note(_ r: inout (Int64, Int64), _ at: Int64) {
        if r.0 < 0 || at < r.0 { r.0 = at }
        if at > r.1 { r.1 = at }
    }

    /// `u` with `nonfinite_input` / `clipped_input` added when its span `[sampleIndex - span,
    /// sampleIndex)` held a cleaned sample (`span` = the whole stream for a whole-file result).
    public func flag(_ u: Update, span: Int) -> Update {
        var u = u
        let hi = u.sampleIndex, lo = hi - Int64(span)
        func hit(_ last: Int64, _ b: (Int64, Int64)) -> Bool {
            (last >= 0 && last >= lo && last < hi) || (b.0 >= 0 && b.0 < hi && b.1 >= lo)
        }
        if hit(lastNonfinite, blockNonfinite) { u.flags.insert(.nonfiniteInput) }
        if hit(lastClipped, blockClipped) { u.flags.insert(.clippedInput) }
        return u
    }
}

extension Update {
    /// The update with every number finite, as the line schema promises: a non-finite raw or
    /// smoothed estimate becomes delay 0, azimuth 0, confidence 0 with flag `invalid_estimate`;
    /// a non-finite level becomes -200 dB (digital silence).
    public var sanitized: Update {
        var u = self
        if !(u.delaySamples.isFinite && u.delayMs.isFinite && u.azimuthDeg.isFinite && u.confidence.isFinite) {
            u.delaySamples = 0; u.delayMs = 0; u.azimuthDeg = 0; u.confidence = 0
            u.flags.insert(.invalidEstimate)
        }
        if !(u.smoothedDelaySamples.isFinite && u.smoothedAzimuthDeg.isFinite && u.smoothedConfidence.isFinite) {
            u.smoothedDelaySamples = 0; u.smoothedAzimuthDeg = 0; u.smoothedConfidence = 0
            u.flags.insert(.invalidEstimate)
        }
        if !u.levelDb.isFinite { u.levelDb = -200 }
        if !u.t.isFinite { u.t = 0 }
        return u
    }
}
