// ArgumentChoices.swift: the engine's closed sets as command-line values. The types and their
// spellings live in Engine and LiveTDE (EngineChoices.swift); only the ArgumentParser
// conformance is here, so neither library depends on ArgumentParser.
import ArgumentParser
import Engine
import LiveTDE

extension EstimatorMethod: ExpressibleByArgument {}
extension VotePost: ExpressibleByArgument {}
extension SubsampleChoice: ExpressibleByArgument {}
extension GCCPHATConfig.Taper: ExpressibleByArgument {}

/// `tded analyze --pooling`: a pooled-evidence weighting (`GCCPHATConfig.PoolWeighting`, its
/// spellings by `init(parsing:)`), or `auto`: the daemon's per update, the whole-clip default
/// with `--whole` (`EstimatorOptions.defaultPooling`, `.defaultWholePooling`).
enum AnalyzePooling: ExpressibleByArgument {
    case auto
    case fixed(GCCPHATConfig.PoolWeighting)

    init?(argument: String) {
        if argument == "auto" { self = .auto; return }
        guard let w = GCCPHATConfig.PoolWeighting(parsing: argument) else { return nil }
        self = .fixed(w)
    }

    var defaultValueDescription: String {
        switch self {
        case .auto: return "auto"
        case .fixed(let w): return w.name
        }
    }

    /// The weighting used for per-update lines or, with `whole`, for one line per file (the
    /// learned whole-clip weighting only with the rectangular windows it was trained on).
    func weighting(whole: Bool, taper: GCCPHATConfig.Taper) -> GCCPHATConfig.PoolWeighting {
        switch self {
        case .auto:
            guard whole else { return EstimatorOptions.defaultPooling }
            return taper == .rectangular ? EstimatorOptions.defaultWholePooling : EstimatorOptions.classicalWholePooling
        case .fixed(let w): return w
        }
    }
}

/// `tded analyze --taper`: the GCC-PHAT tapers, plus `auto` (Hann per update as the daemon,
/// rectangular with `--whole`).
enum AnalyzeTaper: String, CaseIterable, ExpressibleByArgument {
    case auto, rectangular, hann

    /// The taper used for per-update lines or, with `whole`, for one line per file.
    func taper(whole: Bool) -> GCCPHATConfig.Taper {
        switch self {
        case .auto: return whole ? .rectangular : .hann
        case .rectangular: return .rectangular
        case .hann: return .hann
        }
    }
}
