// Calibrate.swift: `tded calibrate guided|passive`: check the channel order and the mic spacing.
import ArgumentParser
import Engine
import Foundation
import LiveTDE
import Logging
import RingBuffer

/// `tded calibrate`: the two calibrations of docs/array-setup.md.
struct Calibrate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "calibrate",
        abstract: "Check the array's channel order and mic spacing (claps, or room noise); prints the config lines to write.",
        discussion: "See docs/array-setup.md.",
        subcommands: [CalibrateGuided.self, CalibratePassive.self])
}

/// Options shared by both modes.
struct CalibrateCommon: ParsableArguments {
    @Option(name: .long, help: "Config file (engine settings, capture.channels, the socket; default \(DaemonConfig.defaultPath) when it exists).")
    var config: String?

    @Option(name: .long, help: "Analyse this recording instead of the live stream.")
    var input: String?

    @Flag(name: .long, help: "Print the result as one JSON object.")
    var json = false

    /// The configuration in use (defaults when none).
    func loadConfig() throws -> (DaemonConfig, String?) {
        let path = config ?? (FileManager.default.fileExists(atPath: DaemonConfig.defaultPath) ? DaemonConfig.defaultPath : nil)
        guard let p = path else { return (DaemonConfig(), nil) }
        return (try DaemonConfig.load(path: p), p)
    }
}

/// Fails with one line and exit status 1.
private func fail(_ cmd: String, _ message: String) -> ExitCode {
    printError("tded calibrate \(cmd): \(message)")
    return ExitCode(1)
}

private func say(_ s: String) { FileHandle.standardError.write(Data((s + "\n").utf8)) }

struct CalibrateGuided: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "guided",
        abstract: "Claps at the LEFT end, then at the RIGHT end: checks the channel order and measures the spacing.",
        discussion: """
        Reads the running daemon's stream (no second process opens the device), or --input, a \
        recording analysed with the daemon's engine settings. Clap sharply on the array's axis, \
        30-50 cm beyond the LEFT mic (--claps times, about a second apart), then beyond the \
        RIGHT mic; the prompts say which end is next. Left-end claps must give positive delays \
        (the right channel hears them later); negative ones mean the channels are swapped. The \
        end-fire delay gives the spacing, d = c * |delay|.
        """)

    @OptionGroup var common: CalibrateCommon

    /// Search range for `--input` recordings, ms.
    static let inputMaxDelayMs = 2.0

    @Option(name: .long, help: "Daemon socket (default: publish.socket of the config).")
    var socket: String?

    @Option(name: .long, help: "Claps per end (2...20).")
    var claps: Int = 3

    @Option(name: .long, help: "Give up after this many seconds of stream, or of waiting for the daemon (live only).")
    var timeout: Double = 120

    func validate() throws {
        guard (2...20).contains(claps) else { throw ValidationError("--claps must be in 2...20 (got \(claps))") }
        guard timeout.isFinite, timeout > 0 else { throw ValidationError("--timeout must be a positive number of seconds") }
    }

    func run() throws {
        let (cfg, cfgPath): (DaemonConfig, String?)
        do { (cfg, cfgPath) = try common.loadConfig() } catch { throw fail("guided", "\(error)") }
        var session = GuidedSession(clapsPerEnd: claps)
        // A recording is analysed with a search range that covers any array (2 ms = 0.69 m),
        // whatever the configured spacing; the daemon's stream has the daemon's range.
        var engine = cfg.engine
        if common.input != nil { engine.maxDelayMs = max(engine.maxDelayMs ?? 0, CalibrateGuided.inputMaxDelayMs) }
        let searchMs = engine.maxDelayMs ?? EstimatorOptions.autoMaxDelayMs(micDistance: engine.micDistance,
                                                                            soundSpeed: engine.soundSpeed, sampleRate: Double(engine.rate))
        // Delays are handled in milliseconds: "sample rate" 1000 gives d = c * |tau_ms| / 1000.
        func prompt() {
            if let end = session.phase {
                let n = (end == .left ? session.left.count : session.right.count) + 1
                say("clap \(n)/\(claps) at the \(end.rawValue.uppercased()) end of the array")
            }
        }
        func heard(_ r: (ArrayEnd, ClapEvent)?) {
            guard let (end, c) = r else { return }
            say(String(format: "  heard at %.2f s (%@ end): delay %+.4f ms, %.0f dB above the background",
                       c.t, end.rawValue.uppercased(), c.delaySamples, c.riseDb))
            prompt()
        }
        prompt()
        if let path = common.input {
            let pipeline: TDEPipeline
            let samples: (left: [Float], right: [Float])
            do {
                pipeline = try Daemon.makePipeline(engine, rateHz: cfg.publish.rateHz)
                samples = try loadStereoForDaemon(path: path, rate: cfg.engine.rate, channels: cfg.capture.channels)
            } catch { throw fail("guided", "\(path): \(error)") }
            for u in pipeline.process(left: samples.left, right: samples.right) where session.phase != nil {
                heard(session.feed(t: u.t, levelDb: u.levelDb, delaySamples: u.delayMs, confidence: u.confidence))
            }
        } else {
            // The live line's confidence is the smoothed one: claps are taken on level alone.
            session.detector.minConfidence = 0
            let location = try DaemonLocation.parse((common.config.map { ["--config", $0] } ?? []) + (socket.map { ["--socket", $0] } ?? []))
            let path = location.socketPath
            let sub = StreamSubscriber(path: path)
            var first: Double?
            var timedOut = false
            let wallStart = Date()
            var warned = false
            sub.run { ev in
                switch ev {
                case .disconnected:
                    if !warned { warned = true; say("waiting for the daemon on \(path)...") }
                    if Date().timeIntervalSince(wallStart) > timeout { timedOut = true; return false }
                case .connected: warned = false
                case .line(let text):
                    guard case .success(let l) = StreamLine.parse(text) else { return true }
                    if first == nil { first = l.t }
                    if l.t - (first ?? l.t) > timeout { timedOut = true; return false }
                    if !l.flags.contains("no_votes") {
                        heard(session.feed(t: l.t, levelDb: l.levelDb, delaySamples: l.rawDelayMs, confidence: 1))
                    }
                    return session.phase != nil
                }
                return true
            }
            if timedOut && first == nil {
                throw fail("guided", "no stream from a daemon on \(path) within \(timeout) s (is tded running? or give --input FILE)")
            }
            if timedOut && session.phase != nil {
                say("timed out after \(timeout) s")
            }
        }
        let res: GuidedCalibration
        do {
            // 0.6 engine samples, in ms
            res = try session.result(sampleRate: 1000, soundSpeed: cfg.engine.soundSpeed, maxDelaySamples: searchMs,
                                     limitMargin: 600 / Double(engine.rate))
        } catch { throw fail("guided", "\(error)") }
        let channels = res.channelsSwapped ? [cfg.capture.channels[1], cfg.capture.channels[0]] : cfg.capture.channels
        if common.json {
            print("{\"mode\":\"guided\",\"channels_swapped\":\(res.channelsSwapped),\"channels\":[\(channels[0]),\(channels[1])]"
                  + ",\"mic_distance\":\(Analyzer.jsonNumber(res.micDistance, 4)),\"mic_distance_uncertainty\":\(Analyzer.jsonNumber(res.micDistanceUncertainty, 4))"
                  + ",\"left_delay_ms\":\(Analyzer.jsonNumber(res.leftDelay, 4)),\"right_delay_ms\":\(Analyzer.jsonNumber(res.rightDelay, 4))"
                  + ",\"claps\":[\(res.leftClaps),\(res.rightClaps)],\"warnings\":[\(res.warnings.map { Analyzer.jsonString($0) }.joined(separator: ","))]}")
            return
        }
        print(res.channelsSwapped
              ? "channel order: SWAPPED (the LEFT-end claps reached the configured right channel first)"
              : "channel order: correct (LEFT-end claps gave positive delays)")
        print(String(format: "mic spacing: %.3f m +- %.3f m (end-fire delays %.4f / %.4f ms; configured engine.mic_distance = %.3f m)",
                     res.micDistance, res.micDistanceUncertainty, res.leftDelay, res.rightDelay, cfg.engine.micDistance))
        for w in res.warnings { print("warning: \(w)") }
        if res.warnings.contains(where: { $0.contains("search limit") }) && common.input == nil {
            print(String(format: "warning: the daemon searches delays up to %.3f ms only (engine.max_delay_ms%@); set engine.max_delay_ms = %.1f, reload it (systemctl reload tded) and calibrate again",
                         searchMs, cfg.engine.maxDelayMs == nil ? " = \"auto\", from mic_distance" : "", CalibrateGuided.inputMaxDelayMs))
        }
        print("")
        print("# lines for \(cfgPath ?? DaemonConfig.defaultPath):")
        print("[capture]")
        print("channels = [\(channels[0]), \(channels[1])]\(res.channelsSwapped ? "   # was [\(cfg.capture.channels[0]), \(cfg.capture.channels[1])]" : "")")
        print("[engine]")
        print(String(format: "mic_distance = %.3f", res.micDistance))
    }
}

struct CalibratePassive: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "passive",
        abstract: "Estimate the mic spacing from a minute of quiet room noise (diffuse-field coherence).",
        discussion: """
        In a diffuse field (room noise arriving from all directions) the coherence of two mics \
        d metres apart is sinc(2 pi f d / c). tded fits d to the measured coherence and says \
        whether the field was diffuse enough to trust the fit (no talker, loudspeaker or fan \
        dominating). Live capture opens capture.device itself: stop the daemon first \
        (systemctl stop tded), or record a file and pass --input. Cannot tell the channel \
        order (use `tded calibrate guided`).
        """)

    @OptionGroup var common: CalibrateCommon

    @Option(name: .long, help: "Seconds to record live (5...600).")
    var seconds: Double = 60

    func validate() throws {
        guard seconds.isFinite, (5...600).contains(seconds) else { throw ValidationError("--seconds must be in 5...600 (got \(seconds))") }
    }

    func run() throws {
        let (cfg, cfgPath): (DaemonConfig, String?)
        do { (cfg, cfgPath) = try common.loadConfig() } catch { throw fail("passive", "\(error)") }
        let rate = cfg.engine.rate
        let samples: (left: [Float], right: [Float])
        if let path = common.input {
            do { samples = try loadStereoForDaemon(path: path, rate: rate, channels: cfg.capture.channels) } catch {
                throw fail("passive", "\(path): \(error)")
            }
        } else {
            samples = try record(cfg)
        }
        let fit: DiffuseFieldFit
        do {
            fit = try DiffuseFieldFit.fit(CoherenceSpectrum.estimate(left: samples.left, right: samples.right, sampleRate: Double(rate)),
                                          soundSpeed: cfg.engine.soundSpeed)
        } catch { throw fail("passive", "\(error)") }
        if common.json {
            print("{\"mode\":\"passive\",\"trusted\":\(fit.trusted),\"mic_distance\":\(Analyzer.jsonNumber(fit.micDistance, 4))"
                  + ",\"mic_distance_uncertainty\":\(Analyzer.jsonNumber(fit.micDistanceUncertainty, 4))"
                  + ",\"coherence_scale\":\(Analyzer.jsonNumber(fit.scale, 3)),\"misfit\":\(Analyzer.jsonNumber(fit.residual, 3))"
                  + ",\"imaginary_rms\":\(Analyzer.jsonNumber(fit.imaginaryRMS, 3)),\"segments\":\(fit.segments)"
                  + ",\"reason\":\(fit.untrustedReason.map { Analyzer.jsonString($0) } ?? "null")}")
            if !fit.trusted { throw ExitCode(1) }
            return
        }
        guard fit.trusted else {
            throw fail("passive", "not trusted: \(fit.untrustedReason ?? "")" + String(format: " (fit would be %.3f m)", fit.micDistance))
        }
        print(String(format: "mic spacing: %.3f m +- %.3f m from %d segments (%.0f-%.0f Hz; coherence scale %.2f, misfit %.3f, imaginary %.3f); configured engine.mic_distance = %.3f m",
                     fit.micDistance, fit.micDistanceUncertainty, fit.segments, fit.bandHz.lowerBound, fit.bandHz.upperBound,
                     fit.scale, fit.residual, fit.imaginaryRMS, cfg.engine.micDistance))
        print("")
        print("# line for \(cfgPath ?? DaemonConfig.defaultPath):")
        print("[engine]")
        print(String(format: "mic_distance = %.3f", fit.micDistance))
    }

    /// `seconds` of live capture from `capture.device` (the daemon must not hold it).
    private func record(_ cfg: DaemonConfig) throws -> (left: [Float], right: [Float]) {
        let rate = cfg.engine.rate
        let want = Int(seconds * Double(rate))
        let ring = StereoRing(minimumCapacity: max(1 << 16, 4 * rate))
        var logger = Logger(label: "tded-calibrate")
        logger.logLevel = .warning
        let cap = ALSACapture(settings: cfg.capture, ring: ring, logger: logger, engineRate: rate)
        say(String(format: "recording %.0f s of room noise from %@: keep quiet...", seconds, cfg.capture.device))
        cap.start()
        defer { cap.stop() }
        var l = [Float](repeating: 0, count: want), r = l
        var got = 0
        let deadline = Date().addingTimeInterval(seconds + 10)
        while got < want {
            let n = l.withUnsafeMutableBufferPointer { lb in r.withUnsafeMutableBufferPointer { rb in
                ring.read(left: lb.baseAddress! + got, right: rb.baseAddress! + got, maxCount: want - got) } }
            got += n
            if n == 0 {
                if Date() > deadline {
                    throw fail("passive", "no audio from \(cfg.capture.device) (is the daemon still holding it? stop it or use --input)")
                }
                usleep(20_000)
            }
        }
        return (l, r)
    }
}
