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
extension FrequencyBand: ExpressibleByArgument {
    public init?(argument: String) { self.init(parsing: argument) }
    public var defaultValueDescription: String { description }
}

/// `tded analyze --pooling`: `auto` or a pooled-evidence weighting by name (`PoolingChoice`).
extension PoolingChoice: ExpressibleByArgument {
    public init?(argument: String) { self.init(parsing: argument) }
    public var defaultValueDescription: String { name }
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
