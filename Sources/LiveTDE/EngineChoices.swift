// EngineChoices.swift: the closed sets of engine settings, one name each. The command line
// (`tded` conforms them to ArgumentParser's ExpressibleByArgument), the config file
// (DaemonConfig) and EstimatorFactory all use these types; the spellings are their raw values.
// Engine's own enums serve the same way: `VotePost` (post), `GCCPHATConfig.Taper` (taper) and
// `GCCPHATConfig.PoolWeighting` (pooling, with a parameter: `init(parsing:)` / `name`).
import Engine

/// The per-window estimators LiveTDE knows (`--method`, `engine.method`).
public enum EstimatorMethod: String, CaseIterable, Sendable, Codable {
    /// GCC-PHAT baseline (`Engine.GCCPHAT`).
    case gccPhat = "gcc-phat"
    /// The learned streaming StereoCRW encoder (see docs/encoder-spec.md).
    case learned
}

/// Per-window sub-sample refinement by name (`--subsample`, `engine.subsample`).
public enum SubsampleChoice: String, CaseIterable, Sendable {
    /// Integer argmax (the paper).
    case none
    /// Parabola through the integer peak.
    case parabolic
    /// Band-limited correlation on a 1/8-sample grid, then a parabola.
    case upsampled

    /// The engine's refinement.
    public var refinement: SubsampleRefinement {
        switch self {
        case .none: return .none
        case .parabolic: return .parabolic
        case .upsampled: return .upsampled(factor: 8)
        }
    }
}

extension CaseIterable where Self: RawRepresentable, RawValue == String {
    /// The accepted spellings for a message: `"a", "b" or "c"` (quoted) or `a, b or c`.
    public static func spellings(quoted: Bool = true) -> String {
        let names = allCases.map { quoted ? "\"\($0.rawValue)\"" : $0.rawValue }
        guard names.count > 1 else { return names.first ?? "" }
        return names.dropLast().joined(separator: ", ") + " or " + names.last!
    }
}
