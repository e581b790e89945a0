import Foundation
import XCTest

/// `tded watch` against a daemon replaying the demo (+30 deg): plain lines into a pipe, one
/// gauge line redrawn in place on a terminal (a pty from util-linux `script`).
final class WatchTests: XCTestCase {
    func testPlainLinesWhenStdoutIsNotATerminal() throws {
        let dir = E2E.tempDir(self)
        let sock = dir + "/tded.sock"
        _ = try ViewE2E.startDemoDaemon(self, dir: dir, socket: sock)
        let (code, out, err) = try runTded(["watch", "--socket", sock, "--count", "30"])
        XCTAssertEqual(code, 0, err)
        XCTAssertFalse(out.contains("\u{1B}") || out.contains("\r"), "escape codes in plain output")
        let lines = out.split(separator: "\n")
        XCTAssertEqual(lines.count, 30, out)
        let re = #"^t=[0-9.]+ azimuth=[+-][0-9]+\.[0-9] confidence=[0-9.]+ level_db=-?[0-9.]+ seq=[0-9]+ flags=\S+( sources=([0-9]+:[+-][0-9]+\.[0-9]:[0-9.]+,?)+)?$"#
        for l in lines { XCTAssertNotNil(l.range(of: re, options: .regularExpression), String(l)) }
    }

    func testGaugeRedrawnInPlaceOnATerminal() throws {
        let script = "/usr/bin/script"
        guard FileManager.default.isExecutableFile(atPath: script) else { throw XCTSkip("no \(script) (util-linux) to make a pty") }
        let dir = E2E.tempDir(self)
        let sock = dir + "/tded.sock"
        _ = try ViewE2E.startDemoDaemon(self, dir: dir, socket: sock)
        let p = try Spawned(script, ["-qfec", "\(E2E.binary) watch --socket \(sock) --count 30", "/dev/null"], dir: dir)
        XCTAssertEqual(p.waitExit(timeout: 60), 0, p.stderr)
        let out = p.stdout
        let gauges = out.components(separatedBy: "\r").filter { $0.hasPrefix("L [") }
        XCTAssertEqual(gauges.count, 30, "expected 30 redraws: \(out.debugDescription.prefix(300))")
        XCTAssertTrue(out.contains("\u{1B}[K"), "no clear-to-end-of-line")
        // One line on screen: the only newline is the final one (the pty shows it as \r\n).
        XCTAssertEqual(out.filter { $0 == "\n" || $0 == "\r\n" }.count, 1, out.debugDescription.suffix(200).description)
        // After the smoother settles the mark is left of centre (the demo is toward the LEFT mic).
        let last = gauges.last!.replacingOccurrences(of: "\u{1B}[K", with: "")
        let bar = last.prefix(while: { $0 != "]" })
        let mark = bar.firstIndex(where: { $0 == "#" || $0 == "o" })
        XCTAssertNotNil(mark, last)
        XCTAssertLessThan(mark ?? bar.endIndex, bar.firstIndex(of: "|") ?? bar.startIndex, last)
    }

    /// Lines with tracked sources (`engine.max_sources`): `sources=ID:AZ:CONF,...` at the end.
    func testPlainLinesListTrackedSources() throws {
        let dir = E2E.tempDir(self)
        let sock = dir + "/fake.sock"
        let fake = try FakeDaemon(path: sock)
        defer { fake.close() }
        let w = try Spawned(E2E.binary, ["watch", "--socket", sock, "--count", "2"], dir: dir)
        XCTAssertTrue(waitUntil(10) { fake.clientCount == 1 })
        let src = #","sources":[{"id":1,"delay_ms":0.3,"azimuth_deg":24.5,"confidence":0.7,"share":0.6},{"id":2,"delay_ms":-0.25,"azimuth_deg":-20.1,"confidence":0.4,"share":0.3}]}"#
        for s in 1...2 { fake.send(String(FakeDaemon.line(seq: s).dropLast()) + src) }
        XCTAssertEqual(w.waitExit(timeout: 10), 0, w.stderr)
        let lines = w.stdout.split(separator: "\n")
        XCTAssertEqual(lines.count, 2, w.stdout)
        for l in lines { XCTAssertTrue(l.hasSuffix(" sources=1:+24.5:0.70,2:-20.1:0.40"), String(l)) }
    }

    /// No daemon yet: one waiting line; the daemon appears: updates follow.
    func testWaitsForTheDaemon() throws {
        let dir = E2E.tempDir(self)
        let sock = dir + "/fake.sock"
        let w = try Spawned(E2E.binary, ["watch", "--socket", sock, "--count", "3"], dir: dir)
        XCTAssertTrue(waitUntil(10) { w.stdout.contains("waiting for the daemon on \(sock)") }, w.stdout + w.stderr)
        let fake = try FakeDaemon(path: sock)
        XCTAssertTrue(waitUntil(10) { fake.clientCount == 1 })
        for s in 1...3 { fake.send(FakeDaemon.line(seq: s, azimuth: -12.5)) }
        XCTAssertEqual(w.waitExit(timeout: 10), 0, w.stderr)
        let lines = w.stdout.split(separator: "\n")
        XCTAssertEqual(lines.count, 4, w.stdout)
        XCTAssertTrue(lines.last!.contains("azimuth=-12.5") && lines.last!.contains("seq=3"), w.stdout)
        fake.close()
    }
}
