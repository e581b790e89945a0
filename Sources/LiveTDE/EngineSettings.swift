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
        pooling.apply(to: &o, whole: false, pooled: post == .pooled)
        o.pooledBandHz = band.rangeHz
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
        pc.minConfidence = minConfidence
        return pc
    }

    /// The configured estimator; an error names the key that chose the failing piece. `note`
    /// gets one line when `pooling = "auto"` falls back to the classical weighting.
    public func makeEstimator(note: (String) -> Void = { _ in }) throws -> DelayEstimator {
        let o = estimatorOptions
        do {
            return try EstimatorFactory.make(o, note: { note("engine.pooling auto: \($0)") })
        } catch {
            throw ConfigError(key: method == .learned ? "engine.model" : o.pooling == .learned ? "engine.pooling" : "engine", "\(error)")
        }
    }

    /// The estimator pipeline for updates published at `rateHz` (`note`: see `makeEstimator`).
    public func makePipeline(rateHz: Double, note: (String) -> Void = { _ in }) throws -> TDEPipeline {
        try TDEPipeline(estimator: try makeEstimator(note: note), config: pipelineConfig(rateHz: rateHz))
    }
}
