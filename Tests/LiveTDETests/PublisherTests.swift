import Foundation
import Logging
import XCTest
@testable import LiveTDE

final class PublisherTests: XCTestCase {
    func makeDir() -> String {
        let d = "/tmp/tded-pub-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: d) }
        return d
    }

    func makePublisher(_ path: String, queue: Int = 8, maxSkipped: Int = 1000) throws -> Publisher {
        var s = DaemonConfig.Publish()
        s.socket = path
        s.clientQueueLines = queue
        s.maxSkippedLines = maxSkipped
        let p = Publisher(settings: s, logger: Logger(label: "test")) { "{\"type\":\"status\",\"v\":1,\"ok\":true}" }
        try p.start()
        addTeardownBlock { p.stop() }
        return p
    }

    /// `publish` returns immediately even when a client never reads: 20 000 lines of 1 KB go
    /// out in well under a second, and the stuck client's lines are skipped and counted.
    func testPublishNeverBlocksOnAStuckClient() throws {
        let path = makeDir() + "/p.sock"
        let p = try makePublisher(path)
        guard let stuck = UnixSocket.connect(path) else { return XCTFail("connect") }
        defer { close(stuck) }
        XCTAssertTrue(waitFor { p.stats.clients.load(ordering: .relaxed) == 1 })
        let line = String(repeating: "x", count: 1000)
        let t0 = Date()
        for _ in 0..<20_000 { p.publish(line) }
        let dt = Date().timeIntervalSince(t0)
        XCTAssertLessThan(dt, 1.0, "publish blocked")
        XCTAssertTrue(waitFor { p.stats.skippedLines.load(ordering: .relaxed) > 0 }, "no skips counted")
        XCTAssertEqual(p.stats.published.load(ordering: .relaxed), 20_000)
    }

    /// A client that stays stuck is disconnected after `maxSkipped` consecutive skipped lines.
    func testStuckClientIsDroppedAfterMaxSkipped() throws {
        let path = makeDir() + "/p.sock"
        let p = try makePublisher(path, queue: 4, maxSkipped: 20)
        guard let stuck = UnixSocket.connect(path) else { return XCTFail("connect") }
        defer { close(stuck) }
        XCTAssertTrue(waitFor { p.stats.clients.load(ordering: .relaxed) == 1 })
        let line = String(repeating: "y", count: 4000)
        for _ in 0..<5000 { p.publish(line) }
        XCTAssertTrue(waitFor { p.stats.droppedClients.load(ordering: .relaxed) == 1 })
        XCTAssertTrue(waitFor { p.stats.clients.load(ordering: .relaxed) == 0 })
    }

    func testStatusRequestGetsOneLineAndClose() throws {
        let path = makeDir() + "/p.sock"
        _ = try makePublisher(path)
        let reply = UnixSocket.request(path, "status")
        XCTAssertEqual(reply, "{\"type\":\"status\",\"v\":1,\"ok\":true}")
    }

    func testLinesReachAClientInOrder() throws {
        let path = makeDir() + "/p.sock"
        let p = try makePublisher(path, queue: 1000)
        guard let fd = UnixSocket.connect(path) else { return XCTFail("connect") }
        defer { close(fd) }
        XCTAssertTrue(waitFor { p.stats.clients.load(ordering: .relaxed) == 1 })
        for i in 0..<100 { p.publish("{\"seq\":\(i)}") }
        var got = ""
        var buf = [UInt8](repeating: 0, count: 65536)
        var tv = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        while got.split(separator: "\n").count < 100 {
            let n = recv(fd, &buf, buf.count, 0)
            if n <= 0 { break }
            got += String(decoding: buf[0..<n], as: UTF8.self)
        }
        XCTAssertEqual(got.split(separator: "\n").map(String.init), (0..<100).map { "{\"seq\":\($0)}" })
    }

    func testRefusesToReplaceNonSocketOrLiveSocket() throws {
        let dir = makeDir()
        let file = dir + "/plain"
        FileManager.default.createFile(atPath: file, contents: Data("x".utf8))
        XCTAssertThrowsError(try Publisher.removeStaleSocket(file)) { XCTAssertTrue("\($0)".contains("not a socket")) }
        let live = dir + "/live.sock"
        _ = try makePublisher(live)
        XCTAssertThrowsError(try Publisher.removeStaleSocket(live)) { XCTAssertTrue("\($0)".contains("already serving")) }
        var s = DaemonConfig.Publish()
        s.socket = dir + "/missing-dir/x.sock"
        let p = Publisher(settings: s, logger: Logger(label: "t")) { "" }
        XCTAssertThrowsError(try p.start()) { XCTAssertTrue("\($0)".contains("does not exist"), "\($0)") }
        p.stop()
    }

    func testSocketModeApplied() throws {
        let path = makeDir() + "/m.sock"
        var s = DaemonConfig.Publish()
        s.socket = path
        s.socketMode = 0o600
        let p = Publisher(settings: s, logger: Logger(label: "t")) { "" }
        try p.start()
        defer { p.stop() }
        var st = stat()
        XCTAssertEqual(lstat(path, &st), 0)
        XCTAssertEqual(Int(st.st_mode & 0o777), 0o600)
    }

    func testSystemdNotifyParsesEnvironment() {
        XCTAssertNil(SystemdNotify(environment: [:]))
        let n = SystemdNotify(environment: ["NOTIFY_SOCKET": "@tded-test", "WATCHDOG_USEC": "4000000"])
        XCTAssertNotNil(n)
        XCTAssertEqual(n?.watchdogInterval, 4.0)
        let other = SystemdNotify(environment: ["NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "1000", "WATCHDOG_PID": "1"])
        XCTAssertNil(other?.watchdogInterval, "watchdog meant for another pid")
        XCTAssertEqual(SystemdNotify.listenFDs(environment: ["LISTEN_PID": "1", "LISTEN_FDS": "1"]), [])
    }

    private func waitFor(_ timeout: Double = 5, _ cond: () -> Bool) -> Bool {
        let end = Date().addingTimeInterval(timeout)
        while Date() < end { if cond() { return true }; usleep(10_000) }
        return cond()
    }
}
