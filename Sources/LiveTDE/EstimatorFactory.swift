// EstimatorFactory.swift: builds a DelayEstimator from a method and options.
import Engine

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
    public var pooling: GCCPHATConfig.PoolWeighting = EstimatorOptions.classicalLivePooling
    /// GCC-PHAT, `post = pooled`: frequency band (Hz) the pooled estimate uses; nil = all.
    public var pooledBandHz: ClosedRange<Double>? = nil
    /// Model file for `.learned` (a `.safetensors` per docs/encoder-spec.md).
    public var modelPath: String? = nil
    /// Model file for `pooling = .learned` (docs/gccmask-spec.md); nil = the shipped one.
    public var poolingModelPath: String? = nil
    /// With `pooling = .learned`: the weighting used instead when the learned one cannot be
    /// built (its model missing or unreadable, or a rate, window, taper, band or search range
    /// it was not trained for), with a note (`EstimatorFactory.make(_:note:)`). This is what
    /// the `auto` choices mean; nil = such a failure is an error.
    public var poolingFallback: GCCPHATConfig.PoolWeighting? = nil

    public init() {}

    /// Default weighting of pooled cross-power spectra, live and per update (`engine.pooling =
    /// "auto"`, `tded analyze` without `--whole`): the learned weighting with the shipped
    /// per-update model `models/tded-gccmask-live-v2.safetensors` (Hann windows, 0.2 s memory,
    /// trained on simulated rooms; docs/gccmask-spec.md). On the live tuning sets (eval/devset.py,
    /// eval/tune.py --live) it measured 0.0143 and 0.0665 ms against `classicalLivePooling`'s
    /// 0.0167 and 0.0760 (160 clips of 3 s each, synthetic and recorded voices; on the older 48
    /// clips 0.0172 vs 0.0154), then once on the evaluation's 300 live clips 0.042 vs 0.064 ms
    /// (eval/results/live-gccmask). Where it cannot be used, `classicalLivePooling` with a note.
    public static let defaultLivePooling = GCCPHATConfig.PoolWeighting.learned

    /// The classical live weighting (the default before the learned one, and its fallback):
    /// coherence-weighted PHAT (`phat+coh`), each bin's PHAT weight times its pooled
    /// magnitude-squared coherence. With `defaultMemorySeconds` (0.2 s) on the live tuning set
    /// (eval/devset.py, 48 clips of 3 s, eval/tune.py --live) it cut the error from 0.0204 to
    /// 0.0154 ms (5-15 dB: 0.035 -> 0.014 ms, >= 15 dB unchanged) at the same 250 ms
    /// direction-step latency (eval/step_response.py); PHAT-beta 0.7 was the previous default.
    public static let classicalLivePooling = GCCPHATConfig.PoolWeighting.masked(beta: 1, mask: .coh)

    /// Default live time constant (s) of the pooled evidence (`engine.memory_s`, `--memory`):
    /// with `phat+coh`, 0.3 s was more accurate still (0.0118 ms) but took 600 ms to follow an
    /// 8-sample direction step; 0.2 s follows it in 250 ms, 0.1 s in 200 ms (0.008 sample steady
    /// error instead of 0.007).
    public static let defaultMemorySeconds = 0.2

    /// The largest delay searched when none is configured (`max_delay_ms = "auto"`), in ms:
    /// the configured geometry's physical limit `mic_distance / sound_speed`, plus 10 % and one
    /// sample, so a spacing a little off still shows as `beyond_range` instead of clipping
    /// silently. Lags the array cannot produce only add ghost peaks. On the tuning set's clips
    /// below -5 dB SNR (eval/devset.py, whole clip) searching +-1.5 ms instead more than doubled
    /// gcc-phat's error (0.264 vs 0.117 ms) and cost the learned encoder 26 % (0.262 vs 0.208
    /// ms); above 15 dB it changed nothing. (The learned encoder's band then has fewer lags than
    /// the 49 it was trained with; its softmax covers the lags searched.)
    public static func autoMaxDelayMs(micDistance: Double, soundSpeed: Double, sampleRate: Double) -> Double {
        1000 * micDistance / soundSpeed * 1.1 + 1000 / sampleRate
    }

    /// Default weighting of one estimate over a whole short clip (`tded analyze --whole`): the
    /// learned weighting (`learned`, models/tded-gccmask-v10.safetensors, trained on simulated
    /// rooms; a set of networks chosen by the pooled span, docs/gccmask-spec.md). On the full
    /// evaluation set it measured 0.131 ms against the classical default's 0.172
    /// (`classicalWholePooling`) on 3600 single-source clips of 72 ms, 0.048 vs 0.083 ms on 1200
    /// mixtures of 0.5 s; on held-out single-source clips of 0.5 s and 1 s, 0.055 and 0.042 ms
    /// against 0.089 and 0.110; on a measured dummy head (KEMAR) 0.034 / 0.021 ms at 0.5 / 1 s
    /// against 0.034 / 0.018. When its model file is missing, `tded analyze` falls back to
    /// `classicalWholePooling` with a note.
    public static let defaultWholePooling = GCCPHATConfig.PoolWeighting.learned

    /// The classical weighting of one estimate over a whole short clip:
    /// PHAT-beta 0.7 times the noise-floor mask (`phat-beta=0.7+snr`, kappa 4). On the tuning
    /// sets (eval/devset.py, 1151-sample clips, search range "auto") it cut the error at -12 to
    /// 2 dB SNR from 0.119 to 0.091 ms, at -5 to 30 dB it moved 0.0383 -> 0.0373 ms, mixtures
    /// 0.094 -> 0.098 ms. Live it is not the default: on spectra pooled over 0.3 s of clean
    /// speech the lower quartile is the speech's own weak band, not noise, and the mask (kappa
    /// 2) cost 50 % at >= 15 dB.
    public static let classicalWholePooling = GCCPHATConfig.PoolWeighting.masked(beta: 0.7, mask: .snr(kappa: 4))

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
    /// Runs the model on a fixed probe (noise at -20 dBFS, right channel 3 samples later) and
    /// refuses it when any embedding or vote is not finite (e.g. weights so large the encoder
    /// overflows: its votes then collapse to a constant or NaN), then resets `est`.
    static func probe(_ est: LearnedEstimator, path: String) throws {
        let enc = StreamingEncoder(model: est.model, windowStride: 16)
        var x = [Float](repeating: 0, count: est.model.window * 2)
        var seed: UInt64 = 0x9E37_79B9_7F4A_7C15
        for i in x.indices {
            seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17
            x[i] = Float(Int64(bitPattern: seed) % 1_000_000) / 1_000_000 * 0.1
        }
        enc.push(x)  // the encoder splits it into its own blocks (results do not depend on the split)
        var checked = 0, zero = 0
        var s = enc.oldestEmbedding
        while s < Int64(x.count) {
            if enc.hasEmbedding(at: s) {
                let e = enc.embedding(at: s)
                var norm: Float = 0
                for k in 0..<est.model.embeddingDim {
                    guard e[k].isFinite else {
                        throw EstimatorFactoryError("learned model \(path): its embeddings are not finite on a probe signal (\(e[k])); the weights are unusable")
                    }
                    norm += e[k] * e[k]
                }
                guard norm.isFinite else {
                    throw EstimatorFactoryError("learned model \(path): its embeddings overflow on a probe signal; the weights are unusable")
                }
                if norm == 0 { zero += 1 }
                checked += 1
            }
            s += 1
        }
        guard checked > 0 else { throw EstimatorFactoryError("learned model \(path): gave no embedding on a probe signal") }
        // Overflowing layers normalise to all-zero embeddings: every vote would be 0.
        guard zero < checked else {
            throw EstimatorFactoryError("learned model \(path): its embeddings collapse to zero on a probe signal (overflowing weights?); the weights are unusable")
        }
        try probeVotes(est, path: path)
    }

    private static func probeVotes(_ est: DelayEstimator, path: String) throws {
        let n = est.windowLength * 2 + est.voteLatency + 64 * est.voteStride
        var rng: UInt64 = 0x2545_F491_4F6C_DD1D
        var src = [Float](repeating: 0, count: n + 3)
        for i in src.indices {
            rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17
            src[i] = Float(Int64(bitPattern: rng) % 1_000_000) / 1_000_000 * 0.1
        }
        let left = Array(src[3...]), right = Array(src[..<n])
        var votes = est.processAll(left: left, right: right)
        votes += { () -> [Vote] in
            let buf = UnsafeMutableBufferPointer<Vote>.allocate(capacity: est.maxVotes(forBlockLength: n) + 64)
            defer { buf.deallocate() }
            let k = est.flush(votes: buf)
            return Array(buf[0..<k])
        }()
        est.reset()
        guard !votes.isEmpty else {
            throw EstimatorFactoryError("learned model \(path): gave no votes on a probe signal")
        }
        if let bad = votes.first(where: { !$0.delay.isFinite }) {
            throw EstimatorFactoryError("learned model \(path): outputs are not finite on a probe signal (delay \(bad.delay)); the weights are unusable")
        }
    }

    /// Builds the estimator described by `options`; throws a one-line error when it can't.
    /// When the learned pooling cannot be built and `options.poolingFallback` is set, builds
    /// that weighting instead and passes `note` one line saying so and why.
    public static func make(_ options: EstimatorOptions, note: (String) -> Void = { _ in }) throws -> DelayEstimator {
        guard options.method == .gccPhat, options.pooling == .learned, let fallback = options.poolingFallback else {
            return try makeExactly(options)
        }
        do {
            return try makeExactly(options)
        } catch let e as EstimatorFactoryError {
            var o = options
            o.pooling = fallback
            let est = try makeExactly(o)
            note("pooling \(fallback.name), not the learned weighting: \(e.description)")
            return est
        }
    }

    /// Builds exactly what `options` describe (no fallback).
    private static func makeExactly(_ options: EstimatorOptions) throws -> DelayEstimator {
        // Before any conversion to whole samples (1e18 ms would overflow Int).
        guard options.maxDelayMs.isFinite, options.maxDelayMs > 0, options.maxDelayMs <= 1000 else {
            throw EstimatorFactoryError("max delay \(options.maxDelayMs) ms is out of range (expected more than 0 and at most 1000 ms)")
        }
        guard options.sampleRate.isFinite, options.sampleRate > 0, options.sampleRate <= 1e6 else {
            throw EstimatorFactoryError("sample rate \(options.sampleRate) Hz is out of range")
        }
        switch options.method {
        case .gccPhat:
            let lag = options.maxLagSamples
            guard lag >= 1 else {
                throw EstimatorFactoryError("max delay \(options.maxDelayMs) ms is less than one sample at \(Int(options.sampleRate)) Hz")
            }
            var cfg = GCCPHATConfig(window: options.window, step: options.effectiveStep, maxLag: lag,
                                    refinement: options.subsample, taper: options.taper,
                                    pooling: options.pooling)
            if let b = options.pooledBandHz {
                let perBin = options.sampleRate / Double(2 * options.window)
                let lo = max(0, Int((b.lowerBound / perBin).rounded(.up)))
                let hi = min(options.window, Int((b.upperBound / perBin).rounded(.down)))
                guard lo < hi else {
                    throw EstimatorFactoryError("pooled band \(b.lowerBound)-\(b.upperBound) Hz holds no frequency bin at \(Int(options.sampleRate)) Hz")
                }
                cfg.pooledBins = lo...hi
            }
            if options.pooling == .learned {
                // Model: options.poolingModelPath (--pooling-model), else $TDED_POOLING_MODEL,
                // else the shipped models/tded-gccmask-v10.safetensors (a model set; rectangular
                // windows, --whole) or tded-gccmask-live-v2 (Hann, per update) (see ModelLoader).
                let kind: ModelLoader.Kind = options.taper == .hann ? .gccMaskLive : .gccMask
                do { cfg.poolingModels = try ModelLoader.loadGccMask(explicit: options.poolingModelPath, kind: kind).models } catch let e as ModelLoaderError {
                    throw EstimatorFactoryError(e.description)
                }
                guard options.sampleRate == 16000 else {
                    throw EstimatorFactoryError("pooling learned is trained at 16000 Hz, the engine runs at \(Int(options.sampleRate)) Hz")
                }
            }
            do {
                return try GCCPHAT(config: cfg)
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
            let est: LearnedEstimator
            do {
                est = try LearnedEstimator(model: m, options: .init(voteStride: options.effectiveStep, maxDelay: lag))
            } catch let e as LearnedEstimator.ConfigurationError {
                throw EstimatorFactoryError(e.description)
            }
            try probe(est, path: loaded.path)
            return est

        }
    }
}
