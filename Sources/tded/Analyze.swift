// Analyze.swift: `tded analyze FILE...`: offline delay/azimuth estimates as JSON lines.
import ArgumentParser
import Engine
import Foundation
import LiveTDE

/// Writes one line to stderr.
func printError(_ s: String) {
    FileHandle.standardError.write(Data((s + "\n").utf8))
}

struct Analyze: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Estimate delay and azimuth of stereo recordings; prints JSON lines.",
        discussion: """
        One JSON line per update hop (every --hop samples at the engine rate) with the votes of \
        the windows inside the last --span samples, or with --whole one line per file from all \
        of its votes. Positive delay = right channel later = source nearer the LEFT mic = \
        positive azimuth. Files that cannot be read give one error line on stderr; the others \
        are still processed and the exit status is 1. Files are read with libsndfile (WAV, \
        RF64, W64, FLAC, Ogg/Vorbis, Opus, MP3, AIFF, CAF); AAC/M4A/3GP through ffmpeg when it \
        is installed; `-` reads a stream from standard input, e.g. \
        `ffmpeg -i memo.m4a -f wav - | tded analyze -`.
        """)

    @Argument(help: "Audio files (2 channels, or pick two with --channels); - for standard input.")
    var files: [String]

    @Option(help: "Estimator.")
    var method: EstimatorMethod = .gccPhat

    @Option(help: "Window length in samples (at the engine rate).")
    var window: Int = 1024

    @Option(help: "Samples between vote windows (default: 16 for gcc-phat, 8 for learned, whose right channel is still encoded at every sample).")
    var step: Int?

    @Option(name: .customLong("max-delay-ms"), help: "Largest |delay| searched, ms (1.5 ms = 24 samples at 16 kHz), or auto: what --mic-distance allows (+10 % and one sample; lags the array cannot produce only add ghost peaks).")
    var maxDelayMs: String = "auto"

    @Option(help: "How each update combines its windows: pooled (sum the windows' evidence, one refined peak), mode (RANSAC-like vote, the paper's) or mean (average vote).")
    var post: VotePost = .pooled

    @Option(help: "GCC-PHAT weighting of the pooled cross-power spectrum (--post pooled): auto (learned: per update with the live model and Hann windows, as the daemon, else phat+coh; with --whole the whole-clip model and rectangular windows, else phat-beta=0.7+snr; without its model the classical one, with a note), phat, srp (whiten each window, then sum), phat-beta=B, or either PHAT with a bin mask: +snr[=K] (noise-floor gain), +coh (coherence), +ml (Hannan-Thomson), e.g. phat-beta=0.7+snr; or learned (a weighting trained on simulated rooms: docs/gccmask-spec.md).")
    var pooling: PoolingChoice = .auto

    @Option(help: "--post pooled, per-update output: time constant in seconds of an exponentially weighted sum of every window's evidence (the daemon's default, so a file gives the lines a live replay publishes); 0 = only the windows inside the last --span samples. --whole pools the whole file.")
    var memory: Double = EstimatorOptions.defaultMemorySeconds

    @Option(help: "GCC-PHAT, --post pooled: frequency band used, LO-HI in Hz (e.g. 300-3500), or all.")
    var band: FrequencyBand = .all

    @Option(name: .customLong("min-confidence"), help: "Per-update output: updates with a lower confidence are flagged low_confidence and the smoothed delay holds (the daemon's engine.min_confidence); default: the estimator's (0.3 with the learned weighting, else 0.05).")
    var minConfidence: Double?

    @Option(help: "Cut-off in Hz of the input high-pass (both channels, before any estimator; removes DC and rumble, which carry no delay information but can pull estimates to 0); 0 = off. The daemon's default (engine.highpass_hz).")
    var highpass: Double = PipelineConfig.defaultHighpassHz

    @Option(name: .customLong("mic-distance"), help: "Microphone spacing in metres (for the azimuth).")
    var micDistance: Double = 0.1

    @Option(name: .customLong("sound-speed"), help: "Speed of sound in m/s.")
    var soundSpeed: Double = 343

    @Option(help: "Engine sample rate in Hz; files at other rates are resampled (libsoxr).")
    var rate: Int = 16000

    @Option(help: "Which two file channels are left,right (0-based), e.g. 0,1 or 2,3.")
    var channels: String?

    @Option(help: "Sub-sample refinement per window: none (the paper), parabolic, or upsampled.")
    var subsample: SubsampleChoice = .none

    @Option(help: "GCC-PHAT window shape: auto (hann per update, as the daemon; rectangular with --whole), hann or rectangular (the paper).")
    var taper: AnalyzeTaper = .auto

    @Option(help: "Samples between updates (800 = 20 Hz at 16 kHz).")
    var hop: Int = 800

    @Option(help: "Samples of audio each update analyses (>= window).")
    var span: Int = 1600

    @Option(help: "Model file for --method learned.")
    var model: String?

    @Option(name: .customLong("pooling-model"), help: "Model file for --pooling learned (default: the shipped models/tded-gccmask-v10.safetensors, or $TDED_POOLING_MODEL).")
    var poolingModel: String?

    @Flag(help: "One estimate per file from all of its votes.")
    var whole = false

    @Option(name: .customLong("max-sources"), help: "Also report up to N (1...4) simultaneous sources per line from the votes, as a \"sources\" array (with --whole: from all of the file's votes).")
    var maxSources: Int?

    @Option(name: .customLong("source-search"), help: ArgumentHelp("Tuning only: multi-source search settings, KEY=VALUE,... with keys min-share, min-votes, radius, separation (samples), contrast.", visibility: .hidden))
    var sourceSearch: String?

    /// Parsed `--channels`.
    func channelPair() throws -> (Int, Int)? {
        guard let c = channels else { return nil }
        let parts = c.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard parts.count == 2, let l = parts[0], let r = parts[1] else {
            throw ValidationError("--channels wants two 0-based channel numbers like 0,1 (got '\(c)')")
        }
        return (l, r)
    }

    func estimatorOptions() throws -> EstimatorOptions {
        var o = EstimatorOptions()
        let maxDelay: Double
        if maxDelayMs == "auto" {
            maxDelay = EstimatorOptions.autoMaxDelayMs(micDistance: micDistance, soundSpeed: soundSpeed,
                                                       sampleRate: Double(rate))
        } else {
            guard let v = Double(maxDelayMs), v.isFinite, (0.01...100).contains(v) else {
                throw ValidationError("--max-delay-ms must be auto or a number in 0.01...100 ms (got \(maxDelayMs))")
            }
            maxDelay = v
        }
        o.method = method; o.sampleRate = Double(rate); o.window = window; o.step = step ?? 0
        o.maxDelayMs = maxDelay; o.modelPath = model; o.poolingModelPath = poolingModel
        o.subsample = subsample.refinement
        // auto: Hann for per-update lines (the daemon's default, so a replay gives the same
        // lines), rectangular for --whole (on clips barely longer than one window it uses the
        // clip's edges that Hann throws away: 0.038 vs 0.100 ms on the tuning set).
        o.taper = taper.taper(whole: whole)
        pooling.apply(to: &o, whole: whole, pooled: post == .pooled)
        o.pooledBandHz = band.rangeHz
        return o
    }

    func pipelineConfig() throws -> PipelineConfig {
        var pc = PipelineConfig()
        guard memory >= 0, memory.isFinite, memory <= 60 else { throw ValidationError("--memory must be a number of seconds in 0...60 (got \(memory))") }
        pc.memorySeconds = memory
        // The same ranges as the daemon's config keys (engine.rate, mic_distance, sound_speed).
        guard AudioRates.engineRates.contains(rate) else {
            throw ValidationError("--rate must be in \(AudioRates.engineRates.lowerBound)...\(AudioRates.engineRates.upperBound) Hz (got \(rate))")
        }
        guard micDistance.isFinite, (0.001...10).contains(micDistance) else {
            throw ValidationError("--mic-distance must be a number in 0.001...10 m (got \(micDistance))")
        }
        guard soundSpeed.isFinite, (100...2000).contains(soundSpeed) else {
            throw ValidationError("--sound-speed must be a number in 100...2000 m/s (got \(soundSpeed))")
        }
        pc.post = post; pc.sampleRate = Double(rate); pc.micDistance = micDistance
        pc.soundSpeed = soundSpeed; pc.updateHop = hop; pc.analysisSpan = span
        pc.keepAllVotes = whole
        guard highpass.isFinite, highpass == 0 || (highpass > 0 && highpass < 0.45 * Double(rate)) else {
            throw ValidationError("--highpass must be 0 (off) or a cut-off in Hz below 0.45 x --rate (\(0.45 * Double(rate)) Hz) (got \(highpass))")
        }
        pc.highpassHz = highpass
        if let c = minConfidence {
            guard c.isFinite, (0...1).contains(c) else { throw ValidationError("--min-confidence must be a number in 0...1 (got \(c))") }
            pc.minConfidence = c
        }
        if let n = maxSources {
            guard (1...SourceSearchConfig.sourceLimit).contains(n) else {
                throw ValidationError("--max-sources must be an integer in 1...\(SourceSearchConfig.sourceLimit) (got \(n))")
            }
            pc.sources.maxSources = n
        }
        if let spec = sourceSearch {
            for item in spec.split(separator: ",") {
                let kv = item.split(separator: "=", maxSplits: 1).map(String.init)
                guard kv.count == 2, let v = Double(kv[1]), v.isFinite, v >= 0 else {
                    throw ValidationError("--source-search wants KEY=VALUE,... (got '\(item)')")
                }
                switch kv[0] {
                case "min-share": pc.sources.minShare = v
                case "min-votes": pc.sources.minVotes = v
                case "radius": pc.sources.radiusSamples = max(0.5, v)
                case "separation": pc.sources.minSeparationSamples = v
                case "contrast": pc.sources.minContrast = v
                default: throw ValidationError("--source-search: unknown key '\(kv[0])' (min-share, min-votes, radius, separation, contrast)")
                }
            }
        }
        return pc
    }

    func validate() throws {
        _ = try channelPair(); _ = try estimatorOptions(); _ = try pipelineConfig()
        guard !files.isEmpty else { throw ValidationError("give at least one audio file (or - for standard input)") }
    }

    func settings() throws -> AnalyzeSettings {
        var st = AnalyzeSettings()
        st.estimator = try estimatorOptions(); st.pipeline = try pipelineConfig()
        st.channels = try channelPair(); st.whole = whole
        return st
    }

    func run() throws {
        var st = try settings()
        // Configuration errors are the same for every file: report once and stop.
        do {
            // auto: the learned weighting needs its model file and what it was trained for
            // (16 kHz, 1024-sample windows, at most +-24 lags); otherwise the classical
            // weighting, said once (and used for every file).
            var fellBack = false
            let est = try EstimatorFactory.make(st.estimator, note: {
                printError("tded analyze: note: \(whole ? "--whole uses" : "per-update lines use") \($0)")
                fellBack = true
            })
            if fellBack, let f = st.estimator.poolingFallback { st.estimator.pooling = f }
            st.estimator.poolingFallback = nil
            _ = try TDEPipeline(estimator: est, config: st.pipeline)
        } catch {
            printError("tded analyze: \(error)")
            throw ExitCode(2)
        }
        let failed = Analyzer.run(files: files, settings: st,
                                  line: { print($0) }, error: { printError("tded analyze: \($0)") })
        if failed > 0 { throw ExitCode(1) }
    }
}
