// EstimatorFactory.swift: builds a DelayEstimator from a method name and options.
import Engine

/// The per-window estimators LiveTDE knows.
public enum EstimatorMethod: String, CaseIterable, Sendable {
    /// GCC-PHAT baseline (`Engine.GCCPHAT`).
    case gccPhat = "gcc-phat"
    /// The learned streaming StereoCRW encoder (see docs/encoder-spec.md).
    case learned
}

/// Everything needed to build an estimator.
public struct EstimatorOptions: Equatable, Sendable {
    public var method: EstimatorMethod = .gccPhat
    /// Engine sample rate in Hz.
    public var sampleRate: Double = 16000
    /// Window length in samples.
    public var window: Int = 1024
    /// Samples between vote windows; 0 selects the method's default (`defaultStep`).
    /// For `.learned` it is the left channel's vote stride (the right channel is always encoded
    /// at every sample).
    public var step: Int = 0
    /// Largest |delay| searched, milliseconds (1.5 ms = 24 samples at 16 kHz).
    public var maxDelayMs: Double = 1.5
    /// GCC-PHAT sub-sample refinement.
    public var subsample: SubsampleRefinement = .none
    /// GCC-PHAT window shape (`rectangular` as in the paper).
    public var taper: GCCPHATConfig.Taper = .rectangular
    /// GCC-PHAT weighting of pooled cross-power spectra (`post = pooled`).
    public var pooling: GCCPHATConfig.PoolWeighting = EstimatorOptions.defaultPooling
    /// Model file for `.learned` (a `.safetensors` per docs/encoder-spec.md).
    public var modelPath: String? = nil

    public init() {}

    /// Default GCC-PHAT weighting of pooled cross-power spectra: PHAT-beta 0.7, the most
    /// accurate of PHAT, PHAT-beta 0.5-0.8 and SRP on the tuning set (eval/tune.py).
    public static let defaultPooling = GCCPHATConfig.PoolWeighting.phat(beta: 0.7)

    /// The vote step a method uses when `step` is 0: 16 for GCC-PHAT (pooled accuracy equals
    /// step 1's on the tuning set at a tenth of the CPU; the paper voted at every sample), 8
    /// for the learned encoder (`LearnedEstimator.Options.defaultVoteStride`).
    public static func defaultStep(for method: EstimatorMethod) -> Int {
        switch method {
        case .gccPhat: return 16
        case .learned: return LearnedEstimator.Options.defaultVoteStride
        }
    }

    /// `step`, with 0 resolved to the method's default.
    public var effectiveStep: Int { step == 0 ? Self.defaultStep(for: method) : step }

    /// `maxDelayMs` in whole samples at `sampleRate`.
    public var maxLagSamples: Int { GCCPHATConfig.lags(maxDelayMs: maxDelayMs, sampleRate: sampleRate) }
}

/// A clear one-line error from building an estimator.
public struct EstimatorFactoryError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ d: String) { description = d }
}

/// Builds estimators; the single place that maps a method to an implementation.
public enum EstimatorFactory {
    /// Builds the estimator described by `options`; throws a one-line error when it can't.
    public static func make(_ options: EstimatorOptions) throws -> DelayEstimator {
        switch options.method {
        case .gccPhat:
            let lag = options.maxLagSamples
            guard lag >= 1 else {
                throw EstimatorFactoryError("max delay \(options.maxDelayMs) ms is less than one sample at \(Int(options.sampleRate)) Hz")
            }
            do {
                return try GCCPHAT(config: GCCPHATConfig(window: options.window, step: options.effectiveStep, maxLag: lag,
                                                         refinement: options.subsample, taper: options.taper,
                                                         pooling: options.pooling))
            } catch let e as EngineConfigError {
                throw EstimatorFactoryError(e.description)
            }
        case .learned:
            // Model: options.modelPath (--model / engine.model), else $TDED_MODEL, else the
            // shipped models/tded-stream-v1.safetensors (see ModelLoader).
            let loaded: (model: EncoderModel, path: String)
            do { loaded = try ModelLoader.loadModel(explicit: options.modelPath) } catch let e as ModelLoaderError {
                throw EstimatorFactoryError(e.description)
            }
            let m = loaded.model
            guard Double(m.sampleRate) == options.sampleRate else {
                throw EstimatorFactoryError("learned model \(loaded.path) expects \(m.sampleRate) Hz audio, the engine runs at \(Int(options.sampleRate)) Hz")
            }
            guard options.window == m.window else {
                throw EstimatorFactoryError("learned model \(loaded.path) has a \(m.window)-sample window; window = \(options.window) does not match")
            }
            let lag = options.maxLagSamples
            guard lag >= 1 else {
                throw EstimatorFactoryError("max delay \(options.maxDelayMs) ms is less than one sample at \(Int(options.sampleRate)) Hz")
            }
            do {
                return try LearnedEstimator(model: m, options: .init(voteStride: options.effectiveStep, maxDelay: lag))
            } catch let e as LearnedEstimator.ConfigurationError {
                throw EstimatorFactoryError(e.description)
            }
        }
    }
}
