import Foundation
import XCTest
@testable import LiveTDE
import Engine

final class DaemonConfigTests: XCTestCase {
    static var repoRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// The shipped config documents every key with its default: parsing it gives exactly the
    /// built-in defaults, and every key the parser knows appears in it.
    /// `engine.band` / `--band`: "all" or "LO-HI" in Hz; what is parsed prints the same way.
    func testFrequencyBandSpellings() {
        XCTAssertEqual(FrequencyBand(parsing: "all"), .all)
        XCTAssertEqual(FrequencyBand(parsing: "300-3500"), .hz(300...3500))
        XCTAssertEqual(FrequencyBand(parsing: "0-62.5"), .hz(0...62.5))
        for bad in ["", "All", "3500-300", "300-300", "-5-300", "300-", "-300", "300-inf", "a-b", "1-2-3"] {
            XCTAssertNil(FrequencyBand(parsing: bad), bad)
        }
        for band in [FrequencyBand.all, .hz(300...3500), .hz(0...62.5)] {
            XCTAssertEqual(FrequencyBand(parsing: band.description), band)
        }
        XCTAssertNil(FrequencyBand.all.rangeHz)
        XCTAssertEqual(FrequencyBand.hz(300...3500).rangeHz, 300...3500)
    }

    func testShippedConfigEqualsDefaults() throws {
        let path = Self.repoRoot.appendingPathComponent("config/tded.toml").path
        let c = try DaemonConfig.load(path: path)
        XCTAssertEqual(c, DaemonConfig())
        let text = try String(contentsOfFile: path, encoding: .utf8)
        for key in ["device", "rate", "format", "device_channels", "channels", "period_frames", "buffer_frames",
                    "ring_seconds", "retry_max_seconds", "method", "model", "window", "step", "max_delay_ms",
                    "post", "pooling", "memory_s", "band", "highpass_hz", "subsample", "taper", "span", "mic_distance", "sound_speed", "min_confidence", "socket", "socket_mode", "socket_group", "rate_hz",
                    "client_queue_lines", "max_skipped_lines", "level"] {
            XCTAssertNotNil(text.range(of: "\n\(key) = "), "config/tded.toml does not document \(key)")
        }
    }

    /// `max_delay_ms = "auto"` (the default) searches what the configured spacing allows (+10 %
    /// and one sample); a number wins.
    func testAutoMaxDelayFollowsTheGeometry() throws {
        XCTAssertNil(DaemonConfig().engine.maxDelayMs)
        XCTAssertEqual(EstimatorOptions.autoMaxDelayMs(micDistance: 0.1, soundSpeed: 343, sampleRate: 16000),
                       1000 * 0.1 / 343 * 1.1 + 0.0625, accuracy: 1e-12)
        var e = DaemonConfig().engine
        for (d, lags) in [(0.05, 3), (0.1, 6), (0.3, 16)] {
            e.micDistance = d
            XCTAssertEqual(try e.makeEstimator().maxDelay, lags, "mic_distance \(d)")
        }
        e.method = .learned; e.micDistance = 0.1
        XCTAssertEqual(try e.makeEstimator().maxDelay, 6)
        e.maxDelayMs = 1.5
        XCTAssertEqual(try e.makeEstimator().maxDelay, 24)
        let c = try DaemonConfig.parse("[engine]\nmax_delay_ms = \"auto\"\nmic_distance = 0.2\n")
        XCTAssertNil(c.engine.maxDelayMs)
        XCTAssertEqual(try c.engine.makeEstimator().maxDelay, 11)
    }

    /// `min_confidence = "auto"` (the default) takes the estimator's hold threshold: 0.3 with the
    /// learned per-update weighting, 0.05 with a classical one; a number wins for both.
    func testMinConfidenceAutoFollowsTheWeighting() throws {
        XCTAssertNil(DaemonConfig().engine.minConfidence)
        XCTAssertNil(try DaemonConfig.parse("[engine]\nmin_confidence = \"auto\"\n").engine.minConfidence)
        XCTAssertEqual(try DaemonConfig.parse("[engine]\nmin_confidence = 0.2\n").engine.minConfidence, 0.2)
        var e = DaemonConfig().engine
        e.poolingModel = Self.repoRoot.appendingPathComponent(ModelLoader.gccMaskLiveRelativePath).path
        e.pooling = .fixed(.learned)
        XCTAssertEqual(try e.makePipeline(rateHz: 20).minConfidence, PipelineConfig.learnedMinConfidence)
        e.pooling = .auto
        XCTAssertEqual(try e.makePipeline(rateHz: 20).minConfidence, 0.3)
        e.pooling = .fixed(EstimatorOptions.classicalLivePooling)
        XCTAssertEqual(try e.makePipeline(rateHz: 20).minConfidence, PipelineConfig.classicalMinConfidence)
        e.method = .learned
        XCTAssertEqual(try e.makePipeline(rateHz: 20).minConfidence, 0.05)
        e.minConfidence = 0.15
        XCTAssertEqual(try e.makePipeline(rateHz: 20).minConfidence, 0.15)
        e.method = .gccPhat; e.pooling = .auto
        XCTAssertEqual(try e.makePipeline(rateHz: 20).minConfidence, 0.15)
    }

    func testValidOverrides() throws {
        let c = try DaemonConfig.parse("""
        [capture]
        device = "plughw:1,0"
        format = "S32_LE"
        device_channels = 4
        channels = [3, 1]
        [engine]
        max_delay_ms = 1
        post = "pooled"
        pooling = "phat-beta=0.7"
        memory_s = 0.5
        band = "300-3500"
        highpass_hz = 0
        [publish]
        socket_mode = "0600"
        rate_hz = 10
        """)
        XCTAssertEqual(c.capture.device, "plughw:1,0")
        XCTAssertEqual(c.capture.format, .s32)
        XCTAssertEqual(c.capture.channels, [3, 1])
        XCTAssertEqual(c.engine.maxDelayMs, 1.0)
        XCTAssertEqual(c.engine.post, .pooled)
        XCTAssertEqual(c.engine.pooling, .fixed(.phat(beta: 0.7)))
        // the default, and its spelling
        XCTAssertEqual(DaemonConfig().engine.pooling, .auto)
        XCTAssertEqual(try DaemonConfig.parse("[engine]\npooling = \"auto\"").engine.pooling, .auto)
        XCTAssertEqual(try DaemonConfig.parse("[engine]\npooling = \"learned\"").engine.pooling, .fixed(.learned))
        XCTAssertEqual(c.engine.memorySeconds, 0.5)
        XCTAssertEqual(c.engine.band, .hz(300...3500))
        XCTAssertEqual(DaemonConfig().engine.band, .all)
        XCTAssertEqual(c.engine.highpassHz, 0)
        XCTAssertEqual(c.engine.pipelineConfig(rateHz: 20).highpassHz, 0)
        XCTAssertEqual(DaemonConfig().engine.pipelineConfig(rateHz: 20).highpassHz, PipelineConfig.defaultHighpassHz)
        XCTAssertEqual(c.publish.socketMode, 0o600)
        XCTAssertEqual(c.publish.rateHz, 10)
    }

    /// `log.level` and `--log-level` take swift-log's level names and nothing else.
    func testLogLevelIsALoggerLevel() throws {
        XCTAssertEqual(DaemonConfig().log.level, .info)
        XCTAssertEqual(try DaemonConfig.parse("[log]\nlevel = \"debug\"\n").log.level, .debug)
        var c = DaemonConfig()
        var o = ConfigOverrides(); o.logLevel = "warning"
        try o.apply(to: &c)
        XCTAssertEqual(c.log.level, .warning)
        o.logLevel = "loud"
        XCTAssertThrowsError(try o.apply(to: &c)) { e in
            XCTAssertEqual("\(e)", "config: --log-level: expected trace, debug, info, notice, warning, error or critical, got \"loud\"")
        }
        XCTAssertEqual(c.log.level, .warning)
    }

    /// Each invalid key (wrong type or out of range) is rejected with an error naming that key
    /// and the expected form.
    func testEachInvalidKeyGetsNamedError() {
        let cases: [(String, String, String)] = [
            // (toml, key, fragment of the expected-form message)
            ("[capture]\nrate = \"fast\"", "capture.rate", "expected an integer in 8000...192000"),
            ("[capture]\nrate = 100", "capture.rate", "expected an integer in 8000...192000, got 100"),
            ("[capture]\nrate = 16000.5", "capture.rate", "expected an integer"),
            ("[capture]\ndevice = 3", "capture.device", "expected a string"),
            ("[capture]\ndevice = \"\"", "capture.device", "non-empty ALSA PCM name"),
            ("[capture]\nformat = \"S24_3LE\"", "capture.format", "\"S16_LE\", \"S32_LE\", \"FLOAT_LE\""),
            ("[capture]\ndevice_channels = 0", "capture.device_channels", "1...64"),
            ("[capture]\nchannels = [0]", "capture.channels", "two different channel indices"),
            ("[capture]\nchannels = [0, 2]", "capture.channels", "0...1"),
            ("[capture]\nchannels = [1, 1]", "capture.channels", "two different"),
            ("[capture]\nchannels = \"0,1\"", "capture.channels", "array of two integers"),
            ("[capture]\nchannels = [0, \"1\"]", "capture.channels", "array of two integers"),
            ("[capture]\nperiod_frames = 8", "capture.period_frames", "16...65536"),
            ("[capture]\nperiod_frames = 1024\nbuffer_frames = 1024", "capture.buffer_frames", "at least 2 x capture.period_frames"),
            ("[capture]\nring_seconds = 0", "capture.ring_seconds", "number in 0.1...60"),
            ("[capture]\nring_seconds = \"2\"", "capture.ring_seconds", "expected a number"),
            ("[capture]\nretry_max_seconds = -1", "capture.retry_max_seconds", "0.1...600"),
            ("[capture]\nbogus = 1", "capture.bogus", "unknown key"),
            ("[engine]\nmethod = \"music\"", "engine.method", "\"gcc-phat\" or \"learned\""),
            ("[engine]\nwindow = 1000", "engine.window", "power of two"),
            ("[engine]\nwindow = 32", "engine.window", "64...65536"),
            ("[engine]\nstep = -1", "engine.step", "0...65536"),
            ("[engine]\nmax_delay_ms = 0", "engine.max_delay_ms", "0.01...100"),
            ("[engine]\nmax_delay_ms = true", "engine.max_delay_ms", "expected a number"),
            ("[engine]\nmax_delay_ms = \"wide\"", "engine.max_delay_ms", "expected \"auto\" or a number"),
            ("[engine]\npost = \"median\"", "engine.post", "\"pooled\", \"mode\" or \"mean\""),
            ("[engine]\npooling = \"scot\"", "engine.pooling", "\"auto\", \"phat\", \"srp\", \"phat-beta=B\" (0 < B <= 1), \"coh\", \"ml\", \"snr\""),
            ("[engine]\npooling = \"phat-beta=0\"", "engine.pooling", "0 < B <= 1"),
            ("[engine]\nmemory_s = -0.1", "engine.memory_s", "0...60"),
            ("[engine]\nband = \"3500-300\"", "engine.band", "\"all\" or \"LO-HI\""),
            ("[engine]\nhighpass_hz = -1", "engine.highpass_hz", "0...96000"),
            ("[engine]\nhighpass_hz = \"100\"", "engine.highpass_hz", "expected a number"),
            ("[engine]\nrate = 8000\nhighpass_hz = 3600", "engine.highpass_hz", "below 0.45 x engine.rate (3600.0 Hz)"),
            ("[engine]\nsubsample = \"cubic\"", "engine.subsample", "\"none\", \"parabolic\" or \"upsampled\""),
            ("[engine]\ntaper = \"kaiser\"", "engine.taper", "\"rectangular\" or \"hann\""),
            ("[engine]\nspan = 512", "engine.span", "at least engine.window"),
            ("[engine]\nmic_distance = 0", "engine.mic_distance", "0.001...10"),
            ("[engine]\nsound_speed = 10", "engine.sound_speed", "100...2000"),
            ("[engine]\nmin_confidence = 1.5", "engine.min_confidence", "0...1"),
            ("[engine]\nmin_confidence = \"high\"", "engine.min_confidence", "expected \"auto\" or a number in 0...1"),
            ("[engine]\nrate = 1", "engine.rate", "8000...192000"),
            ("[publish]\nsocket = \"tded.sock\"", "publish.socket", "absolute path"),
            ("[publish]\nsocket_mode = \"rw-rw----\"", "publish.socket_mode", "octal mode string"),
            ("[publish]\nsocket_mode = 660", "publish.socket_mode", "expected a string"),
            ("[publish]\nrate_hz = 0", "publish.rate_hz", "0.1...1000"),
            ("[publish]\nclient_queue_lines = 0", "publish.client_queue_lines", "1...100000"),
            ("[publish]\nmax_skipped_lines = 0", "publish.max_skipped_lines", "1...10000000"),
            ("[log]\nlevel = \"loud\"", "log.level", "\"trace\""),
            ("capture = 1", "capture", "expected a table [capture]"),
            ("[audio]\nrate = 1", "audio", "unknown key or section"),
        ]
        for (toml, key, fragment) in cases {
            do {
                _ = try DaemonConfig.parse(toml)
                XCTFail("accepted invalid config for \(key): \(toml)")
            } catch let e as ConfigError {
                XCTAssertEqual(e.key, key, "wrong key for \(toml): \(e)")
                XCTAssertTrue(e.description.contains(fragment), "message for \(key) lacks \"\(fragment)\": \(e)")
                XCTAssertFalse(e.description.contains("\n"), "error must be one line: \(e)")
            } catch {
                XCTFail("unexpected error type \(error)")
            }
        }
    }

    func testSyntaxErrorIsOneLineWithPosition() {
        XCTAssertThrowsError(try DaemonConfig.parse("[capture\nrate = 1")) { e in
            let s = "\(e)"
            XCTAssertTrue(s.contains("TOML syntax error at line 1"), s)
            XCTAssertFalse(s.contains("\n"))
        }
    }

    func testMissingFileNamesPath() {
        XCTAssertThrowsError(try DaemonConfig.load(path: "/nonexistent/tded.toml")) { e in
            XCTAssertTrue("\(e)".contains("cannot read /nonexistent/tded.toml"), "\(e)")
        }
    }
}
