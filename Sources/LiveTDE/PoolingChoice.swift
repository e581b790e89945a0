// PoolingChoice.swift: the configured weighting of pooled spectra (`engine.pooling`,
// `tded analyze --pooling`): one by name, or `auto`.
import Engine

/// How pooled cross-power spectra are weighted, as configured: a fixed weighting
/// (`GCCPHATConfig.PoolWeighting`, by name), or `auto`, the default.
///
/// `auto` is the learned weighting trained for the way the spectra are pooled (per update:
/// Hann windows, `EstimatorOptions.defaultLivePooling`; one estimate per clip: rectangular
/// windows, `.defaultWholePooling`), falling back with a note to the classical weighting of the
/// same use (`.classicalLivePooling`, `.classicalWholePooling`) when its model cannot be used.
/// With the other taper, another method or votes instead of pooling, `auto` is the classical
/// weighting.
public enum PoolingChoice: Equatable, Sendable {
    /// The learned weighting where it applies, else the classical one (see the type).
    case auto
    /// This weighting; `.learned` without its model is an error.
    case fixed(GCCPHATConfig.PoolWeighting)

    /// `"auto"` or a weighting's name (`GCCPHATConfig.PoolWeighting(parsing:)`); nil otherwise.
    public init?(parsing s: String) {
        if s == "auto" { self = .auto; return }
        guard let w = GCCPHATConfig.PoolWeighting(parsing: s) else { return nil }
        self = .fixed(w)
    }

    /// The name it is parsed from.
    public var name: String {
        switch self {
        case .auto: return "auto"
        case .fixed(let w): return w.name
        }
    }

    /// Sets `o.pooling` and `o.poolingFallback` (read after `o.method` and `o.taper` are set):
    /// `whole` = one estimate per clip, `pooled` = the update pools its windows' spectra
    /// (`post = pooled`; the weighting is unused otherwise).
    public func apply(to o: inout EstimatorOptions, whole: Bool, pooled: Bool = true) {
        switch self {
        case .fixed(let w):
            o.pooling = w; o.poolingFallback = nil
        case .auto:
            let classical = whole ? EstimatorOptions.classicalWholePooling : EstimatorOptions.classicalLivePooling
            // each learned weighting was trained on one taper: rectangular whole clips, Hann per update
            let trainedOn: GCCPHATConfig.Taper = whole ? .rectangular : .hann
            if o.method == .gccPhat && pooled && o.taper == trainedOn {
                o.pooling = whole ? EstimatorOptions.defaultWholePooling : EstimatorOptions.defaultLivePooling
                o.poolingFallback = classical
            } else {
                o.pooling = classical; o.poolingFallback = nil
            }
        }
    }
}
