import ArgumentParser
import Foundation
import LiveTDE
import Logging

/// `tded run` (the default subcommand): the live daemon.
struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the live daemon: capture (ALSA or a WAV replay) -> engine -> Unix socket.",
        discussion: """
        Configuration comes from --config (default \(DaemonConfig.defaultPath) when it exists, \
        otherwise built-in defaults); the flags below override it. SIGHUP reloads the file, \
        SIGTERM/SIGINT stop cleanly. Clients read one JSON line per update from the socket \
        (nc -U /run/tded.sock); `tded status` asks the daemon for its counters.
        """)

    @OptionGroup var daemon: DaemonLocation

    @Flag(name: .long, help: "Validate the config file (the positional PATH, else --config, else the default path) and exit.")
    var checkConfig = false

    @Flag(name: .long, help: "List ALSA capture devices and exit.")
    var listDevices = false

    @Argument(help: ArgumentHelp("Config file for --check-config.", valueName: "PATH"))
    var checkPath: String?

    @Option(name: .long, help: "ALSA capture PCM (overrides capture.device).")
    var device: String?

    @Option(name: .long, help: "Replay this recording (WAV, FLAC, Ogg, MP3, AIFF, ...; AAC/M4A via ffmpeg) instead of capturing from ALSA.")
    var input: String?

    @Flag(name: .long, help: "With --input: pace the replay in real time (default: as fast as the engine runs).")
    var realtime = false

    @Option(name: .long, help: "With --input: play the file this many times (0 = forever).")
    var loop: Int = 1

    @Option(name: .long, help: "Estimator (overrides engine.method).")
    var method: EstimatorMethod?

    @Option(name: .long, help: "Learned model file (overrides engine.model).")
    var model: String?

    @Option(name: .long, help: "Updates per second (overrides publish.rate_hz).")
    var publishHz: Double?

    @Option(name: .long, help: "Log level (overrides log.level).")
    var logLevel: String?

    @Flag(name: .long, help: "Also print every published line on stdout.")
    var echo = false

    func validate() throws {
        if checkPath != nil && !checkConfig {
            throw ValidationError("unexpected argument \(checkPath!) (only --check-config takes a PATH)")
        }
        if loop < 0 { throw ValidationError("--loop must be >= 0") }
        if realtime && input == nil { throw ValidationError("--realtime needs --input FILE") }
    }

    /// The flags that override the config file (re-applied by the daemon on every SIGHUP).
    func overrides() -> ConfigOverrides {
        var o = ConfigOverrides()
        o.device = device
        if let s = daemon.socket { o.setSocket(s) }
        o.method = method
        o.model = model
        o.publishHz = publishHz
        o.logLevel = logLevel
        return o
    }

    /// Loads the config file named by `path` / `--config` / the default path, then applies the flags.
    func resolvedConfig(path explicit: String? = nil) throws -> (DaemonConfig, String?) {
        let path = explicit ?? daemon.configPath
        var c = try path.map { try DaemonConfig.load(path: $0) } ?? DaemonConfig()
        try overrides().apply(to: &c)
        return (c, path)
    }

    func run() throws {
        // A SIGTERM/SIGHUP during start-up (config, model loading) is kept for the daemon loop
        // instead of killing the process half-started.
        if !listDevices && !checkConfig { DaemonSignals.install() }
        if listDevices {
            print(DeviceList.report(), terminator: "")
            return
        }
        if checkConfig {
            let path = checkPath ?? daemon.config ?? DaemonConfig.defaultPath
            do {
                // Exactly what `run` checks before starting (file, flags, socket, group, engine).
                let (c, _) = try resolvedConfig(path: path)
                _ = try Daemon.preflight(c, fileInput: input != nil, inheritedSocket: false, note: {
                    FileHandle.standardError.write("tded: note: \($0)\n".data(using: .utf8)!)
                })
                print("\(path): OK (capture \(c.capture.device) \(c.capture.format.rawValue) \(c.capture.rate) Hz, \(c.engine.method.rawValue), socket \(c.publish.socket))")
                return
            } catch {
                FileHandle.standardError.write("tded: \(error)\n".data(using: .utf8)!)
                throw ExitCode(2)
            }
        }
        let (cfg, path): (DaemonConfig, String?)
        do {
            (cfg, path) = try resolvedConfig()
        } catch {
            FileHandle.standardError.write("tded: \(error)\n".data(using: .utf8)!)
            throw ExitCode(2)
        }
        let level = cfg.log.level
        DaemonLogLevel.current = level
        LoggingSystem.bootstrap { DaemonLogHandler(label: $0) }
        let logger = Logger(label: "tded")
        var opts = DaemonOptions()
        opts.configPath = path
        opts.input = input
        opts.realtime = realtime
        opts.loops = loop
        opts.echo = echo
        opts.overrides = overrides()
        let code = Daemon(config: cfg, options: opts, logger: logger, loader: loadStereoForDaemon).run()
        if code != 0 { throw ExitCode(code) }
    }
}
