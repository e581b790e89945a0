// FrequencyBand.swift: the frequency band GCC-PHAT's pooled evidence uses (`engine.band`,
// `tded analyze --band`).

/// The frequency band of the pooled GCC-PHAT evidence: every bin, or `LO-HI` in Hz.
public enum FrequencyBand: Equatable, Sendable, CustomStringConvertible {
    /// Every frequency bin (`"all"`, the default).
    case all
    /// Only bins within `LO...HI` Hz (`"LO-HI"`, 0 <= LO < HI).
    case hz(ClosedRange<Double>)

    /// Parses `"all"` or `"LO-HI"` (Hz, 0 <= LO < HI, finite); nil for anything else.
    public init?(parsing s: String) {
        if s == "all" { self = .all; return }
        let parts = s.split(separator: "-", omittingEmptySubsequences: false).map { Double($0) }
        guard parts.count == 2, let lo = parts[0], let hi = parts[1], lo >= 0, hi > lo, hi.isFinite else { return nil }
        self = .hz(lo...hi)
    }

    /// The band in Hz; nil for `.all` (`EstimatorOptions.pooledBandHz`).
    public var rangeHz: ClosedRange<Double>? {
        if case .hz(let r) = self { return r }
        return nil
    }

    /// The spelling `init(parsing:)` reads.
    public var description: String {
        switch self {
        case .all: return "all"
        case .hz(let r): return "\(FrequencyBand.format(r.lowerBound))-\(FrequencyBand.format(r.upperBound))"
        }
    }

    private static func format(_ v: Double) -> String {
        v == v.rounded() && abs(v) < 1e15 ? String(Int64(v)) : String(v)
    }
}
