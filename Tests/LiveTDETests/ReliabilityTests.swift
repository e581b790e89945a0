import Engine
import Foundation
import Logging
import XCTest
@testable import LiveTDE

/// Unit-level failure paths of issue 13 (the end-to-end ones are tdedTests/FaultInjectionTests).
final class ReliabilityTests: XCTestCase {
    func makeDir() -> String {
        let d = "/tmp/tded-rel-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: d) }
        return d
    }

    /// Item 1: a failed `start` (unknown group) followed by `stop()` (what the daemon does)
    /// returns at once; before, the second stop waited forever on a shut-down event loop.
    func testFailedStartThenStopReturnsPromptly() throws {
        var s = DaemonConfig.Publish()
        s.socket = makeDir() + "/p.sock"
        s.socketGroup = "nosuchgroup-\(getpid())"
        let p = Publisher(settings: s, logger: Logger(label: "test")) { "{}" }
        XCTAssertThrowsError(try p.start()) { XCTAssertTrue("\($0)".contains("no such group"), "\($0)") }
        XCTAssertFalse(FileManager.default.fileExists(atPath: s.socket), "failed start left a socket file")
        let done = DispatchSemaphore(value: 0)
        Thread { p.stop(); p.stop(); done.signal() }.start()
        XCTAssertEqual(done.wait(timeout: .now() + 2), .success, "stop() after a failed start hangs")
    }

    /// Item 5: under umask 000 the socket file never exists with group/other access before its
    /// group and mode are set (no connect race), and ends with exactly `socket_mode`.
    func testSocketIsCreatedOwnerOnlyEvenUnderUmaskZero() throws {
        var s = DaemonConfig.Publish()
        s.socket = makeDir() + "/p.sock"
        s.socketMode = 0o660
        var modeAtBind: mode_t = 0o7777
        Publisher.afterBindHook = { path in
            var st = stat()
            if lstat(path, &st) == 0 { modeAtBind = st.st_mode & 0o777 }
        }
        let old = umask(0)
        defer { umask(old); Publisher.afterBindHook = nil }
        let p = Publisher(settings: s, logger: Logger(label: "test")) { "{}" }
        try p.start()
        defer { p.stop() }
        XCTAssertEqual(modeAtBind & 0o077, 0, "socket was group/other accessible at bind: \(String(modeAtBind, radix: 8))")
        var st = stat()
        XCTAssertEqual(lstat(s.socket, &st), 0)
        XCTAssertEqual(st.st_mode & 0o777, 0o660)
    }

    /// Item 7: socket paths `bind` cannot take are config errors (limit 103 bytes, no NUL).
    func testSocketPathLimitsAreConfigErrors() throws {
        let ok = "/" + String(repeating: "a", count: 102)
        XCTAssertEqual(try DaemonConfig.parse("[publish]\nsocket = \"\(ok)\"").publish.socket, ok)
        XCTAssertThrowsError(try DaemonConfig.parse("[publish]\nsocket = \"\(ok)b\"")) {
            XCTAssertEqual(($0 as? ConfigError)?.key, "publish.socket")
        }
        XCTAssertThrowsError(try DaemonConfig.parse("[publish]\nsocket = \"/tmp/a\\u0000b\"")) {
            XCTAssertEqual(($0 as? ConfigError)?.key, "publish.socket")
        }
        XCTAssertThrowsError(try DaemonConfig.parse("[publish]\nsocket_mode = \"+660\"")) {
            XCTAssertEqual(($0 as? ConfigError)?.key, "publish.socket_mode")
        }
    }

    /// Item 2/3: overrides re-applied on reload; restart-only keys listed.
    func testOverridesAndRestartOnlyChanges() throws {
        var o = ConfigOverrides()
        o.method = .learned; o.publishHz = 5; o.setSocket("rel.sock", currentDirectory: "/tmp")
        var c = DaemonConfig()
        try o.apply(to: &c)
        XCTAssertEqual(c.engine.method, .learned); XCTAssertEqual(c.publish.rateHz, 5)
        XCTAssertEqual(c.publish.socket, "/tmp/rel.sock")
        var n = c
        n.engine.rate = 48000; n.capture.device = "hw:9"; n.publish.rateHz = 7
        XCTAssertEqual(n.restartOnlyChanges(from: c, capturing: true), ["capture.device", "engine.rate"])
        XCTAssertEqual(n.restartOnlyChanges(from: c, capturing: false), ["engine.rate"])
        n = c; n.publish.rateHz = 7; n.engine.method = .gccPhat
        XCTAssertEqual(n.restartOnlyChanges(from: c, capturing: true), [])
    }

    /// Item 8: devices, FIFOs, directories and symlink loops are named as such.
    func testInputPathErrorsSayWhatIsWrong() throws {
        let d = makeDir()
        XCTAssertEqual(mkfifo(d + "/fifo", 0o600), 0)
        symlink(d + "/loop", d + "/loop")
        let cases: [(String, String)] = [("/dev/zero", "character device"), ("/dev/null", "character device"),
                                         (d + "/fifo", "FIFO"), (d, "directory"), (d + "/loop", "symbolic links"),
                                         (d + "/none.wav", "no such file")]
        for (path, expect) in cases {
            XCTAssertThrowsError(try WAVReader.read(path: path)) { XCTAssertTrue("\($0)".contains(expect), "\(path): \($0)") }
            XCTAssertThrowsError(try ModelLoader.load(path: path)) { XCTAssertTrue("\($0)".contains(expect), "\(path): \($0)") }
        }
    }
}

/// Item 9: what a method-switching reload allocates is all given back.
final class ReloadMemoryTests: XCTestCase {
    /// Building and dropping the daemon's pipelines (both methods, as SIGHUP does) leaves the
    /// heap in use where it was: no leak per reload.
    func testPipelinesBuiltAndDroppedDoNotLeak() throws {
        var e = DaemonConfig.Engine()
        e.step = 16
        func cycle(_ n: Int) throws {
            for i in 0..<n {
                e.method = i % 2 == 0 ? .learned : .gccPhat
                let p = try Daemon.makePipeline(e, rateHz: 20)
                var x = [Float](repeating: 0, count: 4096)
                for k in x.indices { x[k] = Float(sin(Double(k) * 0.1)) * 0.1 }
                _ = p.process(left: x, right: x)
            }
        }
        try cycle(6)    // warm-up: lazily built caches (FFTW, OpenBLAS, Swift metadata)
        ProcessMemory.trimHeap()
        let before = ProcessMemory.heap().0
        try cycle(16)
        ProcessMemory.trimHeap()
        let after = ProcessMemory.heap().0
        print("heap in use: \(before) KB before, \(after) KB after 16 more pipelines")
        XCTAssertGreaterThan(before, 0)
        XCTAssertLessThan(after - before, 200, "heap in use grew by \(after - before) KB over 16 pipelines")
    }

    /// TOMLKit leaks every parsed document (~1.7 KB); SIGHUPs that re-read the same file or
    /// alternate between versions of it must not grow the heap.
    func testRepeatedConfigParsesDoNotGrowTheHeap() throws {
        let texts = ["[engine]\nstep = 16\nwindow = 2048\nspan = 4096\n[publish]\nsocket = \"/tmp/x.sock\"\n",
                     "[engine]\nmethod = \"learned\"\n[publish]\nrate_hz = 5\n",
                     "[log]\nlevel = 7\n"]   // an invalid file, too
        func cycle(_ n: Int) { for i in 0..<n { _ = try? DaemonConfig.parse(texts[i % texts.count]) } }
        cycle(6)
        ProcessMemory.trimHeap()
        let before = ProcessMemory.heap().0
        cycle(600)
        ProcessMemory.trimHeap()
        let after = ProcessMemory.heap().0
        print("heap in use: \(before) KB before, \(after) KB after 600 config parses")
        XCTAssertLessThan(after - before, 100, "heap grew \(after - before) KB over 600 parses")
        XCTAssertThrowsError(try DaemonConfig.parse(texts[2]), "a cached error is still thrown")
    }
}
