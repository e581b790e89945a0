import Foundation
import LiveTDE
import XCTest

/// End to end through the built `tded` binary: real ALSA (a `file` PCM over a FIFO, no sound
/// card needed), real `nc -U` clients, signals, and `tded analyze` as the reference.
final class DaemonEndToEndTests: XCTestCase {
    /// Engine step used by the live tests (both daemon and `analyze`): 16 keeps a debug build
    /// (engine compiled without optimisation) about 3x faster than real time, so the tests hold
    /// on a loaded 2-core machine. Step 1 is measured on the release build (docs/performance.md).
    let step = 16
    /// The test clip is a narrow-band resonance (700 Hz): rectangular windows leak it into the
    /// whitened bins and bias a pooled estimate by ~0.07 sample (1 degree here); the live tests
    /// use the Hann taper, which does not (docs/method.md, "Pooled evidence").
    let taper = "hann"
    /// `tded analyze` options equal to the daemon's config of these tests.
    var analyzeArgs: [String] { ["--step", "\(step)", "--taper", taper] }

    struct Setup {
        let dir: String, clip: String, raw: [UInt8], fifo: String, asound: String, socket: String, config: String
    }

    /// `light`: step 16 and `mean` votes, for tests about plumbing rather than accuracy, so a
    /// debug build keeps up with real time even on a heavily loaded machine.
    /// `engine`: extra `[engine]` keys (e.g. the learned method and its model).
    func setUpALSA(seconds: Double = 5, extra: String = "", makeFIFO: Bool = true, light: Bool = false,
                   engine: String = "") throws -> Setup {
        let dir = E2E.tempDir(self)
        let clip = dir + "/clip.wav"
        try E2E.makeClip(seconds: seconds, path: clip)
        let fifo = dir + "/capture.fifo"
        if makeFIFO { XCTAssertEqual(mkfifo(fifo, 0o600), 0) }
        let asound = try E2E.alsaConfig(dir: dir, fifo: fifo)
        let socket = dir + "/tded.sock"
        let config = dir + "/tded.toml"
        try E2E.writeConfig(config, """
        [capture]
        device = "tdetest"
        retry_max_seconds = 0.5
        # a long ring: on a loaded machine a debug-build engine may lag, but must not drop
        ring_seconds = 30
        [engine]
        step = \(light ? 16 : step)\(light ? "\npost = \"mean\"" : "")
        taper = "\(taper)"
        \(engine)
        [publish]
        socket = "\(socket)"
        \(extra)
        """)
        return Setup(dir: dir, clip: clip, raw: try E2E.rawS16(clip), fifo: fifo, asound: asound, socket: socket, config: config)
    }

    func startDaemon(_ s: Setup, _ args: [String] = []) throws -> TdedProcess {
        let d = try TdedProcess(["run", "--config", s.config] + args, dir: s.dir, env: ["ALSA_CONFIG_PATH": s.asound])
        addTeardownBlock { d.stop() }
        XCTAssertTrue(d.waitForLog("publishing on", timeout: 10), "daemon did not start: \(d.log)")
        return d
    }

    /// Waits until the engine has processed every frame the source delivered.
    @discardableResult
    func waitEngineCaughtUp(_ socket: String, timeout: Double = 60) -> Bool {
        waitUntil(timeout) {
            guard let st = status(socket) else { return false }
            return st.i("engine_frames") + st.i("dropped_frames") >= st.i("frames")
        }
    }

    func assertConverged(_ lines: [[String: Any]], after t0: Double, file: StaticString = #filePath, line: UInt = #line) {
        let tail = lines.filter { $0.d("t") >= t0 }
        XCTAssertGreaterThanOrEqual(tail.count, 10, "too few lines after t=\(t0)", file: file, line: line)
        let exp = E2E.expectedAzimuth
        let badSmoothed = tail.filter { abs($0.d("azimuth_deg") - exp) > 2.5 }
        let badRaw = tail.filter { abs($0.d("raw_azimuth_deg") - exp) > 1.0 }
        XCTAssertTrue(badSmoothed.isEmpty, "smoothed azimuth off \(exp): \(badSmoothed.prefix(3))", file: file, line: line)
        XCTAssertLessThanOrEqual(badRaw.count, tail.count / 10, "raw azimuth off \(exp): \(badRaw.prefix(3))", file: file, line: line)
        for l in tail {
            XCTAssertEqual(l.i("v"), 1); XCTAssertEqual(l["method"] as? String, "gcc-phat")
            XCTAssertNotNil(l["seq"]); XCTAssertNotNil(l["level_db"]); XCTAssertNotNil(l["confidence"])
        }
    }

    /// The full path: ALSA file PCM fed at real-time pace -> tded -> nc -U. Lines converge to
    /// the known direction and equal `tded analyze` on the same file, update for update.
    func testALSAFilePCMConvergesAndMatchesAnalyze() throws {
        let s = try setUpALSA()
        let d = try startDaemon(s)
        let nc = try NCClient(socket: s.socket, dir: s.dir)
        let feeder = FIFOFeeder(fifo: s.fifo, bytes: s.raw)
        feeder.start()
        XCTAssertTrue(feeder.waitDone(timeout: 15))
        XCTAssertTrue(waitUntil(60) { nc.lines.contains { $0.d("t") >= 4.95 } }, "no line reached t=4.95")
        let st = status(s.socket)
        XCTAssertNotNil(st)
        XCTAssertEqual(st?.i("dropped_frames"), 0, "ring overrun during the test: \(st ?? [:])")
        d.stop()
        let lines = nc.lines.filter { $0.d("t") <= 5.0 }
        XCTAssertGreaterThanOrEqual(lines.count, 90, "expected ~100 lines at 20 Hz over 5 s")
        assertConverged(lines, after: 1.5)
        // seq increases by one per line for a client that keeps up
        XCTAssertNil(seqGap(lines), "gaps in seq")
        let offline = try analyze(s.clip, analyzeArgs)
        XCTAssertGreaterThan(offline.count, 90)
        let (matched, bad) = compareWithAnalyze(lines, offline)
        XCTAssertGreaterThanOrEqual(matched, lines.count - 2, "few updates matched analyze")
        XCTAssertTrue(bad.isEmpty, "live differs from analyze: \(bad.prefix(5))")
    }

    /// The learned daemon, fed through ALSA in 256-frame periods, publishes exactly what
    /// `tded analyze --method learned` computes from the same file in its own blocks, update for
    /// update: with a random model of width 40 (not a multiple of 16, where the result of a GEMM
    /// column once depended on the GEMM's width and so on how the stream was cut) and with the
    /// shipped model, which must also find the clip's direction. Vote step 16 so a debug build
    /// keeps up (the right channel is still encoded at every sample).
    func testLearnedDaemonEqualsAnalyze() throws {
        let dir = E2E.tempDir(self)
        let width40 = dir + "/width40.safetensors"
        try writeRandomModel(path: width40, width: 40, emb: 20, seed: 40)
        let shipped = E2E.repoRoot.appendingPathComponent("models/tded-stream-v1.safetensors").path
        XCTAssertTrue(FileManager.default.fileExists(atPath: shipped), "committed model \(shipped) is missing")
        let seconds = 4.0
        for (label, model) in [("width 40", width40), ("shipped", shipped)] {
            let s = try setUpALSA(seconds: seconds, engine: "method = \"learned\"\nmodel = \"\(model)\"")
            let d = try startDaemon(s)
            let nc = try NCClient(socket: s.socket, dir: s.dir)
            let feeder = FIFOFeeder(fifo: s.fifo, bytes: s.raw)
            feeder.start()
            XCTAssertTrue(feeder.waitDone(timeout: 20), label)
            XCTAssertTrue(waitEngineCaughtUp(s.socket), "\(label): engine did not catch up")
            XCTAssertTrue(waitUntil(60) { nc.lines.contains { $0.d("t") >= seconds - 0.05 } }, "\(label): no line reached the end")
            XCTAssertEqual(status(s.socket)?.i("dropped_frames"), 0, label)
            d.stop()
            let lines = nc.lines.filter { $0.d("t") <= seconds }
            XCTAssertGreaterThanOrEqual(lines.count, 70, label)
            XCTAssertTrue(lines.allSatisfy { $0["method"] as? String == "learned" }, label)
            if label == "shipped" {  // the trained model finds the direction (3 samples = 40.0 deg)
                let raw = lines.filter { $0.d("t") >= 1.5 }.map { $0.d("raw_delay_ms") * 16 }.sorted()
                XCTAssertGreaterThan(raw.count, 30)
                if !raw.isEmpty {
                    XCTAssertEqual(raw[raw.count / 2], Double(E2E.delaySamples), accuracy: 0.25, "median raw delay, samples")
                }
            }
            let offline = try analyze(s.clip, ["--method", "learned", "--model", model, "--step", "\(step)"])
            XCTAssertGreaterThanOrEqual(offline.count, 75, label)
            let (matched, bad) = compareWithAnalyze(lines, offline)
            print("[e2e learned \(label)] \(lines.count) live lines, \(matched) equal to analyze, \(bad.count) differ")
            XCTAssertGreaterThanOrEqual(matched, lines.count - 2, "\(label): few updates matched analyze")
            XCTAssertTrue(bad.isEmpty, "\(label): live differs from analyze: \(bad.prefix(5))")
            // The random model's votes spread over the band: a strong check of equality.
            if label == "width 40" {
                XCTAssertGreaterThan(Set(lines.map { $0.d("raw_delay_ms") }).count, lines.count / 2, "distinct raw delays")
            }
        }
    }

    /// `--input FILE --realtime`: same answers, paced in real time, exits at the end with the
    /// socket removed.
    func testRealtimeFileInputConvergesAndMatchesAnalyze() throws {
        let s = try setUpALSA(seconds: 4)
        let t0 = Date()
        let d = try startDaemon(s, ["--input", s.clip, "--realtime"])
        let nc = try NCClient(socket: s.socket, dir: s.dir)
        XCTAssertEqual(d.waitExit(timeout: 60), 0, d.log)
        let elapsed = Date().timeIntervalSince(t0)
        XCTAssertGreaterThan(elapsed, 3.7, "replay was not paced in real time")
        XCTAssertFalse(FileManager.default.fileExists(atPath: s.socket), "socket file left behind")
        nc.process.waitUntilExit()
        let lines = nc.lines
        XCTAssertGreaterThanOrEqual(lines.count, 70)
        assertConverged(lines, after: 1.5)
        let (matched, bad) = compareWithAnalyze(lines, try analyze(s.clip, analyzeArgs))
        XCTAssertGreaterThanOrEqual(matched, lines.count - 2)
        XCTAssertTrue(bad.isEmpty, "live differs from analyze: \(bad.prefix(5))")
    }

    /// The capture PCM vanishes (FIFO writer closes) and returns: logged once, retried, and
    /// the stream resumes with the right direction, without a process restart.
    func testCapturePCMVanishesAndReturns() throws {
        let s = try setUpALSA(seconds: 6)
        let d = try startDaemon(s)
        let nc = try NCClient(socket: s.socket, dir: s.dir)
        let cut = 3 * 16000 * 4
        let feeder = FIFOFeeder(fifo: s.fifo, bytes: s.raw)
        feeder.start(to: cut)
        XCTAssertTrue(feeder.waitDone(timeout: 10))
        XCTAssertTrue(d.waitForLog("lost", timeout: 5), "loss not detected: \(d.log)")
        let pid = d.pid
        sleep(1)
        XCTAssertEqual(status(s.socket)?["state"] as? String, "waiting")
        feeder.start(from: cut)
        XCTAssertTrue(d.waitForLog("is back", timeout: 5), "device return not logged: \(d.log)")
        // Where the returned audio starts on the stream clock.
        guard let back = status(s.socket) else { return XCTFail("no status") }
        let tBack = Double(back.i("frames")) / 16000
        XCTAssertEqual(back.i("device_lost"), 1)
        XCTAssertEqual(back["state"] as? String, "running")
        XCTAssertEqual(d.log.components(separatedBy: "lost:").count - 1, 1, "loss must be logged once: \(d.log)")
        XCTAssertTrue(feeder.waitDone(timeout: 10))   // the writer goes away again at the end
        XCTAssertTrue(waitEngineCaughtUp(s.socket))
        d.stop()
        XCTAssertEqual(d.pid, pid, "same process throughout")
        // The resumed 3 s of audio are analysed and point the right way.
        let resumed = nc.lines.filter { $0.d("t") > tBack + 0.1 && $0.d("t") <= tBack + 2.9 }
        XCTAssertGreaterThan(resumed.count, 40, "stream did not resume")
        assertConverged(resumed, after: tBack + 1.5)
    }

    /// The device is missing at start: one error line, retries with backoff, capture starts
    /// when the device appears.
    func testMissingDeviceAtStartIsRetriedUntilItAppears() throws {
        let s = try setUpALSA(seconds: 3, makeFIFO: false)
        let d = try startDaemon(s)
        XCTAssertTrue(d.waitForLog("unavailable", timeout: 5))
        sleep(2) // several retries happen meanwhile
        XCTAssertEqual(d.log.components(separatedBy: "unavailable").count - 1, 1, "must log once: \(d.log)")
        XCTAssertEqual(status(s.socket)?["state"] as? String, "waiting")
        let nc = try NCClient(socket: s.socket, dir: s.dir)
        XCTAssertEqual(mkfifo(s.fifo, 0o600), 0)
        let feeder = FIFOFeeder(fifo: s.fifo, bytes: s.raw)
        feeder.start()
        XCTAssertTrue(d.waitForLog("is back", timeout: 5), d.log)
        XCTAssertTrue(feeder.waitDone(timeout: 10))
        XCTAssertTrue(waitEngineCaughtUp(s.socket))
        d.stop()
        assertConverged(nc.lines.filter { $0.d("t") <= 3.0 }, after: 1.5)
    }

    /// Fast publishing setup for the client fault tests: file replay as fast as the engine
    /// runs, looping, coarse step, 500 updates per second of audio.
    func startFast(queue: Int = 16, maxSkipped: Int = 50, realtime: Bool = false) throws -> (Setup, TdedProcess) {
        let s = try setUpALSA(seconds: 2, extra: "client_queue_lines = \(queue)\nmax_skipped_lines = \(maxSkipped)\nrate_hz = \(realtime ? 200 : 500)", light: true)
        let d = try startDaemon(s, ["--input", s.clip, "--loop", "0"] + (realtime ? ["--realtime"] : []))
        return (s, d)
    }

    /// A client that connects and never reads: the engine keeps publishing to the others,
    /// the stuck client's lines are skipped (counted) and it is finally disconnected.
    func testClientThatNeverReadsDoesNotBlockOthers() throws {
        let (s, d) = try startFast()
        guard let stuck = UnixSocket.connect(s.socket) else { return XCTFail("connect failed") }
        defer { close(stuck) }
        let nc = try NCClient(socket: s.socket, dir: s.dir)
        XCTAssertTrue(waitUntil(20) { (status(s.socket)?.i("dropped_clients") ?? 0) >= 1 },
                      "stuck client never dropped: \(status(s.socket) ?? [:])")
        let n1 = nc.lines.count
        sleep(1)
        let n2 = nc.lines.count
        XCTAssertGreaterThan(n2, n1 + 50, "the reading client stalled")
        guard let st = status(s.socket) else { return XCTFail("no status reply") }
        XCTAssertGreaterThanOrEqual(st.i("skipped_lines"), 50)
        XCTAssertEqual(st.i("clients"), 1, "only the nc client should remain")
        nc.kill()
        d.stop()
        // The reading client was never disconnected: it kept receiving up to the end.
        XCTAssertGreaterThan(nc.lines.count, 500)
    }

    /// 50 `nc` clients connect and leave at random (SIGTERM, SIGKILL); a steady client keeps
    /// its gap-free stream and the daemon ends with only that client.
    func testFiftyClientsConnectingAndLeavingAtRandom() throws {
        let (s, d) = try startFast(queue: 64, maxSkipped: 100_000, realtime: true)
        let steady = try NCClient(socket: s.socket, dir: s.dir)
        var rng = SystemRandomNumberGenerator()
        var live: [(NCClient, Date)] = []
        var started = 0
        // Until all 50 have come and gone, however long spawning `nc` takes on a loaded machine
        // (a fixed 4-s window started fewer than 50 there); the deadline only stops a hang.
        let deadline = Date().addingTimeInterval(60)
        while (started < 50 || !live.isEmpty) && Date() < deadline {
            if started < 50 && Int.random(in: 0..<3, using: &rng) == 0 {
                live.append((try NCClient(socket: s.socket, dir: s.dir), Date().addingTimeInterval(Double.random(in: 0.05...1.5, using: &rng))))
                started += 1
            }
            live.removeAll { c, t in
                guard Date() >= t else { return false }
                c.kill(Bool.random(using: &rng) ? SIGKILL : SIGTERM)
                return true
            }
            usleep(20_000)
        }
        XCTAssertEqual(started, 50, "only \(started) clients started before the deadline")
        XCTAssertTrue(waitUntil(5) { status(s.socket)?.i("clients") == 1 }, "vanished clients not cleaned up: \(status(s.socket) ?? [:])")
        guard let st = status(s.socket) else { return XCTFail("no status reply") }
        XCTAssertGreaterThanOrEqual(st.i("clients_total"), 51)
        XCTAssertTrue(d.process.isRunning)
        let n = steady.lines.count
        XCTAssertTrue(waitUntil(3) { steady.lines.count > n + 20 }, "steady client stopped receiving")
        steady.kill(); d.stop()
        XCTAssertNil(seqGap(steady.lines), "steady client lost lines")
    }

    /// A client killed with SIGKILL mid-stream: no SIGPIPE death, the other client continues.
    func testClientKilledMidStream() throws {
        let (s, d) = try startFast(queue: 64, maxSkipped: 100_000, realtime: true)
        let victim = try NCClient(socket: s.socket, dir: s.dir)
        let other = try NCClient(socket: s.socket, dir: s.dir)
        XCTAssertTrue(waitUntil(5) { victim.lines.count > 50 })
        victim.kill(SIGKILL)
        let n = other.lines.count
        XCTAssertTrue(waitUntil(5) { other.lines.count > n + 100 }, "other client stalled after the kill")
        XCTAssertTrue(d.process.isRunning, "daemon died: \(d.log)")
        XCTAssertTrue(waitUntil(3) { status(s.socket)?.i("clients") == 1 })
        other.kill(); d.stop()
    }

    /// SIGHUP with a broken config keeps the running one and logs why (naming the key); a
    /// valid config is then applied (publish rate changes).
    func testSIGHUPWithBrokenConfigKeepsOldOne() throws {
        let s = try setUpALSA(seconds: 2, light: true)
        let d = try startDaemon(s, ["--input", s.clip, "--realtime", "--loop", "0"])
        let nc = try NCClient(socket: s.socket, dir: s.dir)
        XCTAssertTrue(waitUntil(5) { nc.lines.count > 10 })
        let good = try String(contentsOfFile: s.config, encoding: .utf8)
        try E2E.writeConfig(s.config, good + "\n[log]\nlevel = 7\n")
        d.signal(SIGHUP)
        XCTAssertTrue(d.waitForLog("keeping the running configuration", timeout: 5), d.log)
        XCTAssertTrue(d.log.contains("log.level"), "reason must name the key: \(d.log)")
        let n = nc.lines.count
        XCTAssertTrue(waitUntil(3) { nc.lines.count > n + 20 }, "publishing stopped after a bad reload")
        XCTAssertEqual(status(s.socket)?.d("publish_hz"), 20)
        // Now a valid change.
        try E2E.writeConfig(s.config, good.replacingOccurrences(of: "[publish]", with: "[publish]\nrate_hz = 5"))
        d.signal(SIGHUP)
        XCTAssertTrue(d.waitForLog("configuration reloaded", timeout: 5), d.log)
        XCTAssertEqual(status(s.socket)?.d("publish_hz"), 5)
        let m = nc.lines.count
        sleep(2)
        let rate = Double(nc.lines.count - m) / 2
        XCTAssertTrue(rate > 1 && rate < 9, "expected ~5 lines/s after reload (was 20), got \(rate)")
        XCTAssertTrue(d.process.isRunning)
    }

    /// SIGTERM: clean exit 0, socket file removed, systemd told READY then STOPPING, and
    /// watchdog pings sent when WATCHDOG_USEC is set.
    func testSIGTERMRemovesSocketAndNotifiesSystemd() throws {
        let s = try setUpALSA(seconds: 2, light: true)
        let notifyPath = s.dir + "/notify.sock"
        let nfd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(nfd) }
        var addr = sockaddr_un(); addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in for (i, b) in notifyPath.utf8.enumerated() { raw[i] = b } }
        XCTAssertEqual(withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(nfd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }, 0)
        var tv = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(nfd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let d = try TdedProcess(["run", "--config", s.config, "--input", s.clip, "--realtime", "--loop", "0"], dir: s.dir,
                                env: ["NOTIFY_SOCKET": notifyPath, "WATCHDOG_USEC": "1000000"])
        addTeardownBlock { d.stop() }
        var messages = ""
        func drain() {
            var buf = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = recv(nfd, &buf, buf.count, 0)
                if n <= 0 { break }
                messages += String(decoding: buf[0..<n], as: UTF8.self) + "\n"
            }
        }
        XCTAssertTrue(waitUntil(10) { drain(); return messages.contains("READY=1") }, "no READY=1: \(messages)")
        XCTAssertTrue(FileManager.default.fileExists(atPath: s.socket))
        XCTAssertTrue(waitUntil(3) { drain(); return messages.contains("WATCHDOG=1") }, "no watchdog ping")
        d.signal(SIGTERM)
        XCTAssertEqual(d.waitExit(timeout: 5), 0, d.log)
        drain()
        XCTAssertTrue(messages.contains("STOPPING=1"), messages)
        XCTAssertFalse(FileManager.default.fileExists(atPath: s.socket), "socket file not removed")
    }

    /// A stale socket file (nobody listening) is replaced; a live one is refused clearly.
    func testStaleSocketReplacedLiveSocketRefused() throws {
        let s = try setUpALSA(seconds: 2, light: true)
        // stale: bind and close without unlinking
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_un(); addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in for (i, b) in s.socket.utf8.enumerated() { raw[i] = b } }
        XCTAssertEqual(withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }, 0)
        close(fd)
        XCTAssertTrue(FileManager.default.fileExists(atPath: s.socket))
        let d = try startDaemon(s, ["--input", s.clip, "--realtime", "--loop", "0"])
        let attrs = try FileManager.default.attributesOfItem(atPath: s.socket)
        XCTAssertEqual((attrs[.posixPermissions] as? NSNumber)?.intValue, 0o660)
        // a second daemon on the same socket must refuse, not steal it
        let (code, _, err) = try runTded(["run", "--config", s.config, "--input", s.clip], env: ["ALSA_CONFIG_PATH": s.asound])
        XCTAssertNotEqual(code, 0)
        XCTAssertTrue(err.contains("already serving"), err)
        XCTAssertNotNil(status(s.socket), "first daemon lost its socket")
        d.stop()
    }

    /// `tded status` prints the counters; `--json` the raw line.
    func testStatusCommand() throws {
        let s = try setUpALSA(seconds: 2, light: true)
        let d = try startDaemon(s, ["--input", s.clip, "--realtime", "--loop", "0"])
        sleep(1)
        let (code, out, err) = try runTded(["status", "--socket", s.socket])
        XCTAssertEqual(code, 0, err)
        for k in ["uptime_s", "source", "rate", "xruns", "overruns", "dropped_clients", "engine_load"] {
            XCTAssertTrue(out.contains(k), "status lacks \(k): \(out)")
        }
        let (c2, json, _) = try runTded(["status", "--json", "--socket", s.socket])
        XCTAssertEqual(c2, 0)
        let obj = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]
        XCTAssertEqual(obj?.i("rate"), 16000)
        XCTAssertGreaterThan(obj?.d("engine_load") ?? 0, 0)
        d.stop()
        let (c3, _, e3) = try runTded(["status", "--socket", s.socket])
        XCTAssertEqual(c3, 1)
        XCTAssertTrue(e3.contains("no daemon answering"), e3)
    }

    /// Socket activation (what tded.socket does): the daemon serves the inherited listening
    /// socket (LISTEN_FDS) instead of binding its configured path.
    func testSocketActivationUsesInheritedSocket() throws {
        let activate = "/usr/bin/systemd-socket-activate"
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: activate), "systemd-socket-activate not installed")
        let s = try setUpALSA(seconds: 2, light: true)
        let listen = s.dir + "/activated.sock"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: activate)
        p.arguments = ["-l", listen, E2E.binary, "run", "--config", s.config, "--input", s.clip, "--realtime", "--loop", "0"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        addTeardownBlock { if p.isRunning { kill(p.processIdentifier, SIGTERM) }; p.waitUntilExit() }
        XCTAssertTrue(waitUntil(5) { FileManager.default.fileExists(atPath: listen) })
        let nc = try NCClient(socket: listen, dir: s.dir)
        XCTAssertTrue(waitUntil(10) { nc.lines.count >= 5 }, "no lines on the activated socket")
        XCTAssertFalse(FileManager.default.fileExists(atPath: s.socket), "bound its own socket despite LISTEN_FDS")
        XCTAssertEqual(status(listen)?["type"] as? String, "status")
        kill(p.processIdentifier, SIGTERM)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0)
        nc.kill()
    }

    /// S32_LE and FLOAT_LE capture, picking 2 of 4 device channels (`channels = [2, 0]`):
    /// the FIFO carries 4-channel frames with the clip's left in channel 2, right in channel 0
    /// and loud unrelated noise in channels 1 and 3.
    func testALSAFormatsAndTwoOfFourChannels() throws {
        for format in ["S32_LE", "FLOAT_LE"] {
            let s = try setUpALSA(seconds: 3, extra: "")
            var cfg = try String(contentsOfFile: s.config, encoding: .utf8)
            cfg = cfg.replacingOccurrences(of: "[capture]", with: "[capture]\nformat = \"\(format)\"\ndevice_channels = 4\nchannels = [2, 0]")
            try E2E.writeConfig(s.config, cfg)
            let a = try WAVReader.read(path: s.clip)
            var raw = [UInt8](); raw.reserveCapacity(a.frames * 16)
            var rng: UInt32 = 12345
            func put(_ x: Float) {
                let bits: UInt32 = format == "FLOAT_LE" ? x.bitPattern : UInt32(bitPattern: Int32(max(-2147483648, min(2147483647, (Double(x) * 2147483648).rounded()))))
                raw += [UInt8(bits & 0xFF), UInt8((bits >> 8) & 0xFF), UInt8((bits >> 16) & 0xFF), UInt8(bits >> 24)]
            }
            func noise() -> Float { rng = rng &* 1664525 &+ 1013904223; return Float(Int32(bitPattern: rng)) / 4e9 }
            for i in 0..<a.frames { put(a.right[i]); put(noise()); put(a.left[i]); put(noise()) }
            let d = try startDaemon(s)
            let nc = try NCClient(socket: s.socket, dir: s.dir)
            let feeder = FIFOFeeder(fifo: s.fifo, bytes: raw, bytesPerFrame: 16)
            feeder.start()
            XCTAssertTrue(d.waitForLog("capturing from tdetest: \(format), 4 ch (using [2, 0])", timeout: 5), d.log)
            XCTAssertTrue(feeder.waitDone(timeout: 10))
            XCTAssertTrue(waitUntil(60) { nc.lines.contains { $0.d("t") >= 2.95 } })
            d.stop()
            let lines = nc.lines.filter { $0.d("t") <= 3.0 }
            assertConverged(lines, after: 1.5)
            let (matched, bad) = compareWithAnalyze(lines, try analyze(s.clip, analyzeArgs))
            XCTAssertGreaterThan(matched, lines.count / 2, format)
            // S32/float carry the 16-bit clip exactly, so the answers equal the WAV analysis
            XCTAssertTrue(bad.isEmpty, "\(format): \(bad.prefix(3))")
        }
    }

    /// capture.rate 48000 with engine.rate 16000 (a device at its own rate, as USB arrays and
    /// loopback/monitor sources run): resampled on the capture side, the lines converge to the
    /// known delay and equal `tded analyze` of the 48 kHz file; `tded status` shows both rates
    /// and the measured resampler latency.
    func testDeviceAtItsOwnRateIsResampledOnTheCaptureSide() throws {
        let s = try setUpALSA(seconds: 4, light: true)
        var cfg = try String(contentsOfFile: s.config, encoding: .utf8)
        cfg = cfg.replacingOccurrences(of: "[capture]", with: "[capture]\nrate = 48000")
        try E2E.writeConfig(s.config, cfg)
        let a = try WAVReader.read(path: s.clip)
        let up = try Resampler.resample(left: a.left, right: a.right, from: 16000, to: 48000)
        let clip48 = s.dir + "/clip48.wav"
        try WAVWriter.write(path: clip48, channels: [up.left, up.right], sampleRate: 48000, format: .pcm16)
        let d = try startDaemon(s)
        let nc = try NCClient(socket: s.socket, dir: s.dir)
        let feeder = FIFOFeeder(fifo: s.fifo, bytes: try E2E.rawS16(clip48), rate: 48000)
        feeder.start()
        XCTAssertTrue(d.waitForLog("resampling capture 48000 Hz -> engine 16000 Hz", timeout: 5), d.log)
        XCTAssertTrue(feeder.waitDone(timeout: 15))
        XCTAssertTrue(waitUntil(60) { nc.lines.contains { $0.d("t") >= 3.9 } }, "no line reached t=3.9")
        let st = status(s.socket)
        XCTAssertEqual(st?.i("rate"), 16000); XCTAssertEqual(st?.i("device_rate"), 48000)
        let lat = st?.d("resample_latency_ms") ?? .nan
        XCTAssertTrue(lat > 0 && lat < 50, "resample_latency_ms \(lat)")
        XCTAssertEqual(st?.i("dropped_frames"), 0)
        let (hc, human, _) = try runTded(["status", "--socket", s.socket])
        XCTAssertEqual(hc, 0)
        XCTAssertTrue(human.contains("device_rate") && human.contains("48000") && human.contains("resample_latency_ms"), human)
        d.stop()
        let lines = nc.lines.filter { $0.d("t") <= 3.9 }
        assertConverged(lines, after: 1.5)
        let (matched, bad) = compareWithAnalyze(lines, try analyze(clip48, analyzeArgs + ["--post", "mean"]))
        XCTAssertGreaterThanOrEqual(matched, lines.count * 9 / 10, "live differs from analyze: \(bad.prefix(5))")
    }
}

/// Nil when `seq` increases by exactly one from line to line, else where it first jumps.
func seqGap(_ lines: [[String: Any]]) -> String? {
    let seqs = lines.map { $0.i("seq") }
    guard !seqs.isEmpty else { return "no lines" }
    for k in 1..<max(1, seqs.count) where seqs[k] != seqs[k - 1] + 1 {
        return "seq jumps from \(seqs[k - 1]) to \(seqs[k]) at line \(k) of \(seqs.count)"
    }
    return nil
}
