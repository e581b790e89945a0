import Foundation
import XCTest

/// examples/clients: the Python client (standard library only) and the Swift client
/// (`tded-example-client`, on the project's own types), against a real daemon and a fake one.
final class ClientExamplesTests: XCTestCase {
    static let python = "/usr/bin/env"
    static let pyClient = E2E.repoRoot.appendingPathComponent("examples/clients/tded_client.py").path

    /// The Swift example client built next to `tded`.
    static var swiftClient: String {
        (E2E.binary as NSString).deletingLastPathComponent + "/tded-example-client"
    }

    func clients(_ sock: String, count: Int, dir: String) throws -> [(String, Spawned)] {
        XCTAssertTrue(FileManager.default.isExecutableFile(atPath: Self.swiftClient), "not built: \(Self.swiftClient)")
        return [
            ("python", try Spawned(Self.python, ["python3", Self.pyClient, "--socket", sock, "--count", "\(count)"], dir: dir)),
            ("swift", try Spawned(Self.swiftClient, ["--socket", sock, "--count", "\(count)"], dir: dir)),
        ]
    }

    func updates(_ out: String) -> [(seq: Int, az: Double)] {
        out.split(separator: "\n").compactMap { l -> (Int, Double)? in
            guard l.hasPrefix("update "), let s = l.range(of: #"seq=[0-9]+"#, options: .regularExpression),
                  let a = l.range(of: #"azimuth=[-+0-9.]+"#, options: .regularExpression) else { return nil }
            return (Int(l[s].dropFirst(4))!, Double(l[a].dropFirst(8))!)
        }
    }

    /// Started before the daemon, both wait; they follow it, see it go, and reconnect when it
    /// comes back, reading the demo's direction (+30 deg) both times.
    func testClientsFollowDaemonRestarts() throws {
        let dir = E2E.tempDir(self)
        let sock = dir + "/tded.sock"
        let cs = try clients(sock, count: 200, dir: dir)
        for (n, c) in cs { XCTAssertTrue(waitUntil(10) { c.stdout.contains("waiting for \(sock)") }, "\(n): \(c.stdout) \(c.stderr)") }
        var daemon = try ViewE2E.startDemoDaemon(self, dir: dir, socket: sock)
        for (n, c) in cs { XCTAssertTrue(waitUntil(30) { self.updates(c.stdout).count >= 30 }, "\(n): \(c.stdout.suffix(300)) \(c.stderr)") }
        daemon.stop()
        for (n, c) in cs { XCTAssertTrue(waitUntil(10) { c.stdout.contains("disconnected") }, "\(n): \(c.stdout.suffix(300))") }
        daemon = try ViewE2E.startDemoDaemon(self, dir: dir, socket: sock)
        for (n, c) in cs {
            XCTAssertEqual(c.waitExit(timeout: 60), 0, "\(n): \(c.stderr)")
            let out = c.stdout
            XCTAssertEqual(out.components(separatedBy: "\nconnected \(sock)").count - 1, 2, "\(n): two connections: \(out.prefix(200))")
            XCTAssertTrue(out.contains("summary: updates=200 gaps=0 missed=0 reconnects=1"), "\(n): \(out.suffix(200))")
            let u = updates(out)
            XCTAssertEqual(u.count, 200)
            // both runs start at a low seq: the client saw the restart as a new stream, not a gap
            XCTAssertLessThan(u.last!.seq, 200, "\(n)")
            // the second run (>= 6 s of the demo) reaches its direction and dwells there
            let second = u.suffix(from: u.lastIndex(where: { $0.seq == u.map(\.seq).min()! }) ?? 0)
            let near = second.filter { abs($0.az - ViewE2E.demoAzimuth) <= 3 }.count
            XCTAssertGreaterThanOrEqual(near, 40, "\(n): \(second.count) updates after the restart, \(near) within 3 deg of 30")
        }
        daemon.stop()
    }

    /// Gaps in `seq` are reported with their size; a line of an unknown schema version stops
    /// the client with status 3 and a message saying so.
    func testClientsReportGapsAndRejectUnknownVersion() throws {
        let dir = E2E.tempDir(self)
        let sock = dir + "/fake.sock"
        let fake = try FakeDaemon(path: sock)
        defer { fake.close() }
        let cs = try clients(sock, count: 0, dir: dir)
        XCTAssertTrue(waitUntil(10) { fake.clientCount == 2 }, "clients did not connect")
        for s in [1, 2, 3, 7, 8] { fake.send(FakeDaemon.line(seq: s)) }
        fake.send(FakeDaemon.line(seq: 9, v: 2))
        for (n, c) in cs {
            XCTAssertEqual(c.waitExit(timeout: 10), 3, "\(n): \(c.stdout) \(c.stderr)")
            XCTAssertTrue(c.stdout.contains("gap: 3 lines missed before seq=7"), "\(n): \(c.stdout)")
            XCTAssertTrue(c.stderr.contains("unknown schema version v=2"), "\(n): \(c.stderr)")
            XCTAssertTrue(c.stdout.contains("summary: updates=5 gaps=1 missed=3 reconnects=0"), "\(n): \(c.stdout)")
        }
    }
}
