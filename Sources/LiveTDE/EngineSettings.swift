// EngineSettings.swift: `[engine]` of the config -> the estimator options and pipeline config.
import Engine

extension DaemonConfig.Engine {
    /// The estimator options these settings describe (`EstimatorFactory.make` builds them).
    public var estimatorOptions: EstimatorOptions {
        var o = EstimatorOptions()
        o.method = method
        o.sampleRate = Double(rate)
        o.window = window
        o.step = step
        o.maxDelayMs = maxDelayMs ?? EstimatorOptions.autoMaxDelayMs(micDistance: micDistance, soundSpeed: soundSpeed,
                                                                      sampleRate: o.sampleRate)
        o.modelPath = model.isEmpty ? nil : model
        o.poolingModelPath = poolingModel.isEmpty ? nil : poolingModel
        o.subsample = subsample.refinement
        o.taper = taper
        o.pooling = pooling
        o.pooledBandHz = DaemonConfig.Engine.parseBand(band) ?? nil
        return o
    }

    /// The pipeline configuration for updates published at `rateHz`.
    public func pipelineConfig(rateHz: Double) -> PipelineConfig {
        var pc = PipelineConfig()
        pc.sampleRate = Double(rate)
        pc.updateHop = max(1, Int((Double(rate) / rateHz).rounded()))
        pc.analysisSpan = max(window, span)
        pc.post = post
        pc.memorySeconds = memorySeconds
        pc.highpassHz = highpassHz
        pc.micDistance = micDistance
        pc.soundSpeed = soundSpeed
        pc.sources.maxSources = maxSources
        return pc
    }

    /// The configured estimator; an error names the key that chose the failing piece.
    public func makeEstimator() throws -> DelayEstimator {
        do {
            return try EstimatorFactory.make(estimatorOptions)
        } catch {
            throw ConfigError(key: method == .learned ? "engine.model" : pooling == .learned ? "engine.pooling" : "engine", "\(error)")
        }
    }

    /// The estimator pipeline for updates published at `rateHz`.
    public func makePipeline(rateHz: Double) throws -> TDEPipeline {
        try TDEPipeline(estimator: try makeEstimator(), config: pipelineConfig(rateHz: rateHz))
    }
}
