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

    /// Builds the estimator pipeline for `engine` publishing at `rateHz`.
    public static func makePipeline(_ e: DaemonConfig.Engine, rateHz: Double) throws -> TDEPipeline {
        let estimator = try makeEstimator(e)
        var pc = PipelineConfig()
        pc.sampleRate = Double(e.rate)
        pc.updateHop = max(1, Int((Double(e.rate) / rateHz).rounded()))
        pc.analysisSpan = max(e.window, e.span)
        pc.post = VotePost(rawValue: e.post) ?? .mode
        pc.memorySeconds = e.memorySeconds
        pc.micDistance = e.micDistance
        pc.soundSpeed = e.soundSpeed
        return try TDEPipeline(estimator: estimator, config: pc)
    }

    /// The configured estimator, built by `EstimatorFactory` (the one place methods map to code).
    static func makeEstimator(_ e: DaemonConfig.Engine) throws -> DelayEstimator {
        var o = EstimatorOptions()
        guard let m = EstimatorMethod(rawValue: e.method) else {
            throw EstimatorFactoryError("engine.method: unknown method \"\(e.method)\"")
        }
        o.method = m
        o.sampleRate = Double(e.rate)
        o.window = e.window
        o.step = e.step
        o.maxDelayMs = e.maxDelayMs ?? EstimatorOptions.autoMaxDelayMs(micDistance: e.micDistance,
                                                                        soundSpeed: e.soundSpeed, sampleRate: o.sampleRate)
        o.modelPath = e.model.isEmpty ? nil : e.model
        switch e.subsample {
        case "parabolic": o.subsample = .parabolic
        case "upsampled": o.subsample = .upsampled(factor: 8)
        default: o.subsample = .none
        }
        o.taper = GCCPHATConfig.Taper(rawValue: e.taper) ?? .rectangular
        o.pooling = GCCPHATConfig.PoolWeighting(parsing: e.pooling) ?? .phat(beta: 1)
        o.pooledBandHz = DaemonConfig.Engine.parseBand(e.band) ?? nil
        do {
            return try EstimatorFactory.make(o)
        } catch {
            // Name the key that chose the failing piece.
            throw ConfigError(key: e.method == "learned" ? "engine.model" : "engine", "\(error)")
        }
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
            pipeline = try Daemon.preflight(config, fileInput: options.input != nil, inheritedSocket: inherited != nil)
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
        logger.info("tded running: \(source.label) -> \(publisher.path ?? "socket fd 3"), \(config.engine.method), \(config.publish.rateHz) Hz")

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
                let p = try Daemon.makePipeline(new.engine, rateHz: new.publish.rateHz)
                engine.replacePipeline(p)
                trimPending = true
            } catch {
                logger.error("SIGHUP: keeping the running configuration, engine settings rejected: \(error)")
                return
            }
        }
        publisher.update(settings: new.publish)
        if let lvl = Logger.Level(rawValue: new.log.level) { DaemonLogLevel.current = lvl }
        configLock.lock(); config = new; configLock.unlock()
        logger.notice("SIGHUP: configuration reloaded from \(path)")
    }

    /// The reply to a `status` request: one JSON object.
    public func statusLine() -> String {
        configLock.lock()
        let config = self.config
        configLock.unlock()
        let s = source.stats
        let p = publisher.stats
        let audio = Double(engine.framesProcessed.load(ordering: .relaxed)) / Double(config.engine.rate)
        let cpu = Double(engine.cpuNanos.load(ordering: .relaxed)) * 1e-9
        var ru = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &ru)
        let procCPU = Double(ru.ru_utime.tv_sec) + Double(ru.ru_utime.tv_usec) * 1e-6
            + Double(ru.ru_stime.tv_sec) + Double(ru.ru_stime.tv_usec) * 1e-6
        let uptime = monotonicSeconds() - startMono
        var fields: [String] = [
            "\"type\":\"status\"", "\"v\":1",
            "\"uptime_s\":\(Analyzer.jsonNumber(uptime, 1))",
            "\"source\":\(Analyzer.jsonString(source.label))",
            "\"state\":\(Analyzer.jsonString(s.running.load(ordering: .relaxed) == 1 ? "running" : (s.finished.load(ordering: .relaxed) == 1 ? "finished" : "waiting")))",
            "\"rate\":\(config.engine.rate)",
            "\"method\":\(Analyzer.jsonString(config.engine.method))",
            "\"publish_hz\":\(Analyzer.jsonNumber(config.publish.rateHz, 2))",
            "\"frames\":\(s.frames.load(ordering: .relaxed))",
            "\"xruns\":\(s.xruns.load(ordering: .relaxed))",
            "\"device_lost\":\(s.deviceLost.load(ordering: .relaxed))",
            "\"overruns\":\(ring.overruns)",
            "\"dropped_frames\":\(ring.droppedFrames)",
            "\"clients\":\(p.clients.load(ordering: .relaxed))",
            "\"clients_total\":\(p.accepted.load(ordering: .relaxed))",
            "\"dropped_clients\":\(p.droppedClients.load(ordering: .relaxed))",
            "\"skipped_lines\":\(p.skippedLines.load(ordering: .relaxed))",
            "\"published\":\(p.published.load(ordering: .relaxed))",
            "\"audio_s\":\(Analyzer.jsonNumber(audio, 2))",
            "\"engine_frames\":\(engine.framesProcessed.load(ordering: .relaxed))",
            "\"engine_cpu_s\":\(Analyzer.jsonNumber(cpu, 3))",
            "\"engine_load\":\(Analyzer.jsonNumber(audio > 0 ? cpu / audio : 0, 4))",
            "\"process_cpu_s\":\(Analyzer.jsonNumber(procCPU, 3))",
            "\"nonfinite_samples\":\(engine.nonfiniteSamples.load(ordering: .relaxed))",
            "\"clipped_samples\":\(engine.clippedSamples.load(ordering: .relaxed))",
        ]
        let mem = ProcessMemory.sample()
        fields.append("\"rss_kb\":\(mem.rssKB)")
        fields.append("\"heap_in_use_kb\":\(mem.heapInUseKB)")
        fields.append("\"heap_free_kb\":\(mem.heapFreeKB)")
        fields.append("\"fds\":\(mem.fds)")
        if let a = source as? ALSACapture {
            fields.append("\"device\":\(Analyzer.jsonString(config.capture.device))")
            fields.append("\"device_rate\":\(a.negotiatedRate.load(ordering: .relaxed))")
            fields.append("\"resample_latency_ms\":\(Analyzer.jsonNumber(Double(a.resampleLatencyMicros.load(ordering: .relaxed)) / 1000, 3))")
        }
        return "{" + fields.joined(separator: ",") + "}"
    }
}

/// The published line for one update (schema version 1, see README "Socket lines").
public func liveLine(_ u: Update, seq: Int, sampleRate: Double) -> String {
    // Built by appending into one reserved buffer (one allocation per line; String(format:)
    // would cost dozens). Numbers through `appendFixed`, the formatter `tded analyze` uses too.
    var s = ""
    s.reserveCapacity(320)
    s += "{\"v\":1,\"t\":"; appendFixed(&s, u.t, 3)
    s += ",\"delay_ms\":"; appendFixed(&s, u.smoothedDelaySamples / sampleRate * 1000, 4)
    s += ",\"azimuth_deg\":"; appendFixed(&s, u.smoothedAzimuthDeg, 2)
    s += ",\"confidence\":"; appendFixed(&s, u.smoothedConfidence, 3)
    s += ",\"level_db\":"; appendFixed(&s, u.levelDb, 1)
    s += ",\"method\":"; appendJSONString(&s, u.method)
    s += ",\"seq\":"; s += String(seq)
    s += ",\"raw_delay_ms\":"; appendFixed(&s, u.delayMs, 5)
    s += ",\"raw_azimuth_deg\":"; appendFixed(&s, u.azimuthDeg, 3)
    s += ",\"votes\":"; s += String(u.votes)
    s += ",\"flags\":["
    var first = true
    for (flag, name) in flagNames where u.flags.contains(flag) {
        if !first { s += "," }
        first = false
        s += "\""; s += name; s += "\""
    }
    s += "]}"
    return s
}

private let flagNames: [(UpdateFlags, String)] = [(.noVotes, "no_votes"), (.silent, "silent"),
    (.lowConfidence, "low_confidence"), (.beyondRange, "beyond_range"), (.holding, "holding"),
    (.stale, "stale"), (.gated, "gated")] + UpdateFlags.inputFlagNames

/// Appends a JSON string literal.
func appendJSONString(_ s: inout String, _ v: String) {
    s += "\""
    for u in v.unicodeScalars {
        switch u {
        case "\"": s += "\\\""
        case "\\": s += "\\\\"
        default:
            if u.value < 0x20 { s += String(format: "\\u%04x", u.value) } else { s.unicodeScalars.append(u) }
        }
    }
    s += "\""
}

/// Reads the ring, runs the pipeline, publishes every update. Allocation-free per sample:
/// the block buffers are allocated once; each published update costs two allocations (the
/// line and its hand-off to the event loop), measured with scripts/alloc-count.c.
final class EngineThread: @unchecked Sendable {
    let finished = ManagedAtomic<Bool>(false)
    let framesProcessed = ManagedAtomic<Int>(0)
    let cpuNanos = ManagedAtomic<Int>(0)
    /// Input samples replaced (not finite) and clipped (beyond full scale), see `InputSanitizer`.
    let nonfiniteSamples = ManagedAtomic<Int>(0)
    let clippedSamples = ManagedAtomic<Int>(0)
    private let sanitizer = InputSanitizer()
    private let heartbeat = ManagedAtomic<Int>(0)  // monotonic ms of last loop turn
    private let ring: StereoRing
    private var pipeline: TDEPipeline
    private let publisher: Publisher
    private let echo: Bool
    private let source: AudioSource
    private let logger: Logger
    private let keepRunning = ManagedAtomic<Bool>(true)
    private let pendingLock = NSLock()
    private var pendingPipeline: TDEPipeline?
    private let hasPending = ManagedAtomic<Bool>(false)
    private var thread: Thread?
    private let done = DispatchSemaphore(value: 0)
    private var seq = 0
    static let block = 256

    init(ring: StereoRing, pipeline: TDEPipeline, publisher: Publisher, echo: Bool,
         source: AudioSource, logger: Logger) {
        self.ring = ring; self.pipeline = pipeline; self.publisher = publisher
        self.echo = echo; self.source = source; self.logger = logger
    }

    func start() {
        heartbeat.store(Int(monotonicSeconds() * 1000), ordering: .relaxed)
        let t = Thread { [self] in self.run() }
        t.name = "tded-engine"
        t.stackSize = 4 << 20
        thread = t
        t.start()
    }

    func stop() {
        keepRunning.store(false, ordering: .relaxed)
        _ = done.wait(timeout: .now() + 2)
    }

    /// Seconds since the engine loop last turned.
    func heartbeatAge() -> Double {
        monotonicSeconds() - Double(heartbeat.load(ordering: .relaxed)) / 1000
    }

    /// True while a pipeline handed to `replacePipeline` has not been swapped in yet.
    var pipelinePending: Bool { hasPending.load(ordering: .acquiring) }

    /// Swaps in a new pipeline at the next block boundary (SIGHUP). The stream clock restarts.
    func replacePipeline(_ p: TDEPipeline) {
        pendingLock.lock(); pendingPipeline = p; pendingLock.unlock()
        hasPending.store(true, ordering: .releasing)
    }

    private func threadCPUNanos() -> Int {
        var ts = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
        return ts.tv_sec * 1_000_000_000 + ts.tv_nsec
    }

    private func run() {
        setThreadName("tded-engine")  // visible in top -H and /proc
        let l = UnsafeMutablePointer<Float>.allocate(capacity: EngineThread.block)
        let r = UnsafeMutablePointer<Float>.allocate(capacity: EngineThread.block)
        defer { l.deallocate(); r.deallocate(); done.signal() }
        var timeOffset = 0.0 // seconds of audio before the current pipeline (after a reload)
        while keepRunning.load(ordering: .relaxed) {
            heartbeat.store(Int(monotonicSeconds() * 1000), ordering: .relaxed)
            if hasPending.load(ordering: .acquiring) {
                pendingLock.lock()
                if let p = pendingPipeline {
                    timeOffset += Double(pipeline.samplesProcessed) / pipeline.config.sampleRate
                    pipeline = p; pendingPipeline = nil
                    sanitizer.restartStream()
                }
                hasPending.store(false, ordering: .relaxed)
                pendingLock.unlock()
            }
            let n = ring.read(left: l, right: r, maxCount: EngineThread.block)
            if n == 0 {
                if source.stats.finished.load(ordering: .acquiring) == 1 && ring.availableToRead == 0 {
                    finished.store(true, ordering: .releasing)
                    // Stay alive (idle) so status still answers until the daemon exits.
                    usleep(20_000)
                    continue
                }
                usleep(2000)
                continue
            }
            let c0 = threadCPUNanos()
            let off = timeOffset
            sanitizer.clean(l, r, count: n, position: pipeline.samplesProcessed)
            nonfiniteSamples.store(sanitizer.nonfiniteSamples, ordering: .relaxed)
            clippedSamples.store(sanitizer.clippedSamples, ordering: .relaxed)
            let span = pipeline.config.analysisSpan
            pipeline.process(left: UnsafeBufferPointer(start: l, count: n),
                             right: UnsafeBufferPointer(start: r, count: n)) { u in
                var u = sanitizer.flag(u, span: span).sanitized
                u.t += off
                seq += 1
                let line = liveLine(u, seq: seq, sampleRate: pipeline.config.sampleRate)
                publisher.publish(line)
                if echo { print(line); fflush(stdout) }
            }
            cpuNanos.wrappingIncrement(by: threadCPUNanos() - c0, ordering: .relaxed)
            framesProcessed.wrappingIncrement(by: n, ordering: .relaxed)
        }
    }
}

/// TERM/INT/HUP caught by a handler (a signal delivered to a thread that does not block it);
/// the daemon loop takes them. The handler only does one lock-free atomic OR.
public enum DaemonSignals {
    private static let pending = ManagedAtomic<Int>(0)

    /// Installs the handlers (idempotent). Call as early as possible: from then on these
    /// signals never kill the process, whichever thread receives them.
    public static func install() {
        _ = pending.load(ordering: .relaxed)   // initialise before any handler can run
        for s in [SIGTERM, SIGINT, SIGHUP] {
            var sa = sigaction()
            sa.__sigaction_handler.sa_handler = { sig in
                DaemonSignals.pending.loadThenBitwiseOr(with: 1 << Int(sig), ordering: .relaxed)
            }
            sigemptyset(&sa.sa_mask)
            sa.sa_flags = SA_RESTART
            sigaction(s, &sa, nil)
        }
    }

    /// The signals caught since the last call.
    public static func take() -> Set<Int32> {
        let bits = pending.exchange(0, ordering: .relaxed)
        return Set([SIGTERM, SIGINT, SIGHUP].filter { bits & (1 << Int($0)) != 0 })
    }
}

/// The process-wide log level of the daemon's handlers, changeable at run time (SIGHUP applies
/// `log.level` to every component's logger at once).
public enum DaemonLogLevel {
    private static let storage = ManagedAtomic<Int>(Logger.Level.allCases.firstIndex(of: .info)!)
    /// Current level.
    public static var current: Logger.Level {
        get { Logger.Level.allCases[storage.load(ordering: .relaxed)] }
        set { storage.store(Logger.Level.allCases.firstIndex(of: newValue)!, ordering: .relaxed) }
    }
}

/// A stderr log handler whose level is `DaemonLogLevel.current` (shared by all loggers).
public struct DaemonLogHandler: LogHandler {
    private var inner: StreamLogHandler
    /// A handler for `label`.
    public init(label: String) {
        inner = StreamLogHandler.standardError(label: label)
        inner.logLevel = .trace  // filtering happens through `logLevel` below
    }
    /// The shared level.
    public var logLevel: Logger.Level {
        get { DaemonLogLevel.current }
        set { DaemonLogLevel.current = newValue }
    }
    /// Metadata of this handler.
    public var metadata: Logger.Metadata {
        get { inner.metadata }
        set { inner.metadata = newValue }
    }
    /// One metadata value.
    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { inner[metadataKey: key] }
        set { inner[metadataKey: key] = newValue }
    }
    /// Writes the event through the stream handler.
    public func log(event: LogEvent) { inner.log(event: event) }
}
