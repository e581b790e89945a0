import Atomics
import Engine
import Foundation
import Logging
import RingBuffer

/// How `tded run` was asked to get its audio and where to send its lines.
public struct DaemonOptions: Sendable {
    /// Config file (nil: built-in defaults; SIGHUP then has nothing to reload).
    public var configPath: String?
    /// Replay this WAV file instead of capturing from ALSA.
    public var input: String?
    /// Pace the replay in real time.
    public var realtime = false
    /// Replay the file this many times (0 = forever).
    public var loops = 1
    /// Also print every published line on stdout.
    public var echo = false
    /// Exit once a file input is finished (after publishing its last update).
    public var exitAtEnd = true
    /// Command-line overrides, applied over the file at start and again on every SIGHUP.
    public var overrides = ConfigOverrides()
    /// Creates options.
    public init() {}
}

/// Loads a WAV file as planar stereo at `rate` Hz (provided by the WAV/resampler code).
public typealias StereoLoader = (_ path: String, _ rate: Int, _ channels: [Int]) throws -> (left: [Float], right: [Float])

/// The live daemon: source thread -> ring -> engine thread -> publisher, plus signals,
/// sd_notify and status. `run()` blocks until SIGTERM/SIGINT (or the end of a file input).
public final class Daemon: @unchecked Sendable {
    private var config: DaemonConfig
    private let options: DaemonOptions
    private var logger: Logger
    private let loader: StereoLoader
    private let startWall = Date()
    private let startMono = monotonicSeconds()
    private var ring: StereoRing!
    private var source: AudioSource!
    private var publisher: Publisher!
    private var engine: EngineThread!
    private let notify = SystemdNotify()
    /// Guards `config`, which SIGHUP replaces while the event loop may be reading it for status.
    private let configLock = NSLock()
    /// A reload replaced the pipeline: trim the heap once the engine has dropped the old one.
    private var trimPending = false

    /// Creates a daemon; nothing starts until `run()`.
    public init(config: DaemonConfig, options: DaemonOptions, logger: Logger, loader: @escaping StereoLoader) {
        self.config = config
        self.options = options
        self.logger = logger
        self.loader = loader
    }

    /// Builds the estimator pipeline for `engine` publishing at `rateHz`
    /// (`DaemonConfig.Engine.makePipeline`).
    /// `note` gets one line when `pooling = "auto"` falls back to the classical weighting.
    public static func makePipeline(_ e: DaemonConfig.Engine, rateHz: Double,
                                    note: (String) -> Void = { _ in }) throws -> TDEPipeline {
        try e.makePipeline(rateHz: rateHz, note: note)
    }

    /// Runs until a shutdown signal; returns the process exit status.
    public func run() -> Int32 {
        // Signals: handled synchronously on this thread; every thread created after this
        // inherits the blocked mask, so only sigtimedwait below sees them.
        // Threads that existed before (libraries start some at load time) do not block them,
        // and the kernel may hand a signal to such a thread while this one is busy (e.g. in a
        // slow reload): the default action would kill the process. `DaemonSignals` catches
        // those instead and the loop below picks them up.
        DaemonSignals.install()
        signal(SIGPIPE, SIG_IGN)
        var set = sigset_t()
        sigemptyset(&set)
        for s in [SIGTERM, SIGINT, SIGHUP] { sigaddset(&set, s) }
        pthread_sigmask(SIG_BLOCK, &set, nil)

        // Every check that can fail runs before anything is created or loaded (one line, exit
        // at once): the same checks as `--check-config`.
        let inherited = SystemdNotify.listenFDs().first
        let pipeline: TDEPipeline
        do {
            pipeline = try Daemon.preflight(config, fileInput: options.input != nil, inheritedSocket: inherited != nil,
                                            note: { logger.warning("\($0)") })
        } catch {
            logger.critical("\(error)")
            return 2
        }
        ring = StereoRing(minimumCapacity: Int(config.capture.ringSeconds * Double(config.engine.rate)))

        // Source
        if let path = options.input {
            let samples: (left: [Float], right: [Float])
            do {
                samples = try loader(path, config.engine.rate, config.capture.channels)
            } catch {
                logger.critical("input \(path): \(error)")
                return 1
            }
            source = FileSource(label: "file:\(path)", left: samples.left, right: samples.right,
                                rate: config.engine.rate, realtime: options.realtime,
                                loops: options.loops, ring: ring)
        } else {
            source = ALSACapture(settings: config.capture, ring: ring, logger: logger, engineRate: config.engine.rate)
        }

        // Publisher
        publisher = Publisher(settings: config.publish, logger: logger) { [weak self] in
            self?.statusLine() ?? "{\"type\":\"status\"}"
        }
        // Everything statusLine() reads exists before the socket can accept a connection
        // (under socket activation a client may already be waiting).
        engine = EngineThread(ring: ring, pipeline: pipeline, publisher: publisher, echo: options.echo,
                              source: source, logger: logger)
        do {
            try publisher.start(inheritedFD: inherited)
        } catch {
            logger.critical("\(error)")
            publisher.stop()
            return 1
        }
        engine.start()
        source.start()
        notify?.send("READY=1\nSTATUS=publishing on \(publisher.path ?? "inherited socket") from \(source.label)\nMAINPID=\(getpid())")
        // the weighting in effect (pooling = "auto" may have fallen back; logged above)
        let weighting = (pipeline.estimator as? GCCPHAT).map { config.engine.post == .pooled ? " (pooling \($0.config.pooling.name))" : "" } ?? ""
        logger.info("tded running: \(source.label) -> \(publisher.path ?? "socket fd 3"), \(config.engine.method.rawValue)\(weighting), \(config.publish.rateHz) Hz")

        var nextWatchdog = monotonicSeconds()
        var lastStatus = 0.0
        var lastDropped = 0, lastXruns = 0
        loop: while true {
            var ts = timespec(tv_sec: 0, tv_nsec: 200_000_000)
            if let w = notify?.watchdogInterval { ts.tv_nsec = Int(min(0.2, w / 4) * 1e9) }
            let sig = sigtimedwait(&set, nil, &ts)
            let caught = DaemonSignals.take()
            if sig == SIGTERM || sig == SIGINT || caught.contains(SIGTERM) || caught.contains(SIGINT) {
                let term = sig == SIGTERM || (sig != SIGINT && caught.contains(SIGTERM))
                logger.info("received \(term ? "SIGTERM" : "SIGINT"), shutting down")
                break loop
            }
            if sig == SIGHUP || caught.contains(SIGHUP) {
                reload()
            }
            // Once the engine has dropped the pipeline a reload replaced, give the freed heap
            // back: without this RSS crept up ~13 KB per method-switching reload (freed memory
            // retained by malloc's arenas, not a leak; see ReloadMemoryTests).
            if trimPending && !engine.pipelinePending {
                trimPending = false
                ProcessMemory.trimHeap()
            }
            let now = monotonicSeconds()
            if let w = notify?.watchdogInterval, now >= nextWatchdog {
                // Only vouch for liveness while the engine thread is making progress.
                if engine.heartbeatAge() < max(2.0, w) { notify?.send("WATCHDOG=1") }
                nextWatchdog = now + w / 2
            }
            if now - lastStatus > 5 {
                lastStatus = now
                // Summarise trouble since the last look (never per event: that could flood).
                let o = ring.droppedFrames, x = source.stats.xruns.load(ordering: .relaxed)
                if o > lastDropped {
                    logger.warning("engine fell behind: \(o - lastDropped) frames dropped at the ring in the last 5 s (\(ring.overruns) overruns in total)")
                }
                if x > lastXruns { logger.warning("\(x - lastXruns) capture xrun(s) recovered in the last 5 s") }
                lastDropped = o; lastXruns = x
                let state = source.stats.running.load(ordering: .relaxed) == 1 ? "capturing" : "waiting for device"
                notify?.send("STATUS=\(state) from \(source.label), \(publisher.stats.clients.load(ordering: .relaxed)) clients")
            }
            if engine.finished.load(ordering: .acquiring) {
                if options.exitAtEnd {
                    logger.info("input finished after \(String(format: "%.1f", Double(engine.framesProcessed.load(ordering: .relaxed)) / Double(config.engine.rate))) s of audio")
                    break loop
                }
            }
        }
        notify?.send("STOPPING=1")
        source.stop()
        engine.stop()
        publisher.stop()
        logger.info("stopped")
        return 0
    }

    /// SIGHUP: re-reads the config file and re-applies the command-line overrides over it.
    /// Engine, publish-rate, client-limit and log-level changes apply at once. A change that
    /// cannot apply to the running source or socket (`restartOnlyChanges`), or any invalid
    /// value, rejects the reload as a whole: the running configuration stays, one error line.
    func reload() {
        guard let path = options.configPath else {
            logger.warning("SIGHUP: no config file was given (--config), nothing to reload")
            return
        }
        var new: DaemonConfig
        do {
            new = try DaemonConfig.load(path: path)
            try options.overrides.apply(to: &new)
        } catch {
            logger.error("SIGHUP: keeping the running configuration, \(path) is invalid: \(error)")
            return
        }
        let fixed = new.restartOnlyChanges(from: config, capturing: options.input == nil)
        if !fixed.isEmpty {
            logger.error("SIGHUP: keeping the running configuration, \(fixed.joined(separator: ", ")) cannot change while running (restart tded to apply)")
            return
        }
        if new.engine != config.engine || new.publish.rateHz != config.publish.rateHz {
            do {
                let p = try Daemon.makePipeline(new.engine, rateHz: new.publish.rateHz,
                                                note: { logger.warning("SIGHUP: \($0)") })
                engine.replacePipeline(p)
                trimPending = true
            } catch {
                logger.error("SIGHUP: keeping the running configuration, engine settings rejected: \(error)")
                return
            }
        }
        publisher.update(settings: new.publish)
        DaemonLogLevel.current = new.log.level
        configLock.lock(); config = new; configLock.unlock()
        logger.notice("SIGHUP: configuration reloaded from \(path)")
    }

    /// The reply to a `status` request: one JSON object (`DaemonStatus.line`).
    public func statusLine() -> String { status().line }

    /// The daemon's counters now.
    public func status() -> DaemonStatus {
        configLock.lock()
        let config = self.config
        configLock.unlock()
        let s = source.stats
        let p = publisher.stats
        let frames = engine.framesProcessed.load(ordering: .relaxed)
        let audio = Double(frames) / Double(config.engine.rate)
        let cpu = Double(engine.cpuNanos.load(ordering: .relaxed)) * 1e-9
        var ru = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &ru)
        let procCPU = Double(ru.ru_utime.tv_sec) + Double(ru.ru_utime.tv_usec) * 1e-6
            + Double(ru.ru_stime.tv_sec) + Double(ru.ru_stime.tv_usec) * 1e-6
        let mem = ProcessMemory.sample()
        let state: DaemonStatus.State = s.running.load(ordering: .relaxed) == 1 ? .running
            : (s.finished.load(ordering: .relaxed) == 1 ? .finished : .waiting)
        var st = DaemonStatus(
            uptimeS: monotonicSeconds() - startMono, source: source.label, state: state,
            rate: config.engine.rate, method: config.engine.method, publishHz: config.publish.rateHz,
            frames: s.frames.load(ordering: .relaxed), xruns: s.xruns.load(ordering: .relaxed),
            deviceLost: s.deviceLost.load(ordering: .relaxed), overruns: ring.overruns,
            droppedFrames: ring.droppedFrames, clients: p.clients.load(ordering: .relaxed),
            clientsTotal: p.accepted.load(ordering: .relaxed),
            droppedClients: p.droppedClients.load(ordering: .relaxed),
            skippedLines: p.skippedLines.load(ordering: .relaxed), published: p.published.load(ordering: .relaxed),
            audioS: audio, engineFrames: frames, engineCPUS: cpu, engineLoad: audio > 0 ? cpu / audio : 0,
            processCPUS: procCPU, nonfiniteSamples: engine.nonfiniteSamples.load(ordering: .relaxed),
            clippedSamples: engine.clippedSamples.load(ordering: .relaxed),
            rssKB: mem.rssKB, heapInUseKB: mem.heapInUseKB, heapFreeKB: mem.heapFreeKB, fds: mem.fds)
        if let a = source as? ALSACapture {
            st.device = config.capture.device
            st.deviceRate = a.negotiatedRate.load(ordering: .relaxed)
            st.resampleLatencyMs = Double(a.resampleLatencyMicros.load(ordering: .relaxed)) / 1000
        }
        return st
    }
}
