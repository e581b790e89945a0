import Foundation
import LiveTDE
import XCTest

/// The fault-injection suite (issue 13): every startup failure exits at once with one line,
/// reloads keep what cannot change live and what the command line chose, `--check-config`
/// rejects what `run` rejects, and errors say what is wrong. Through the built `tded` binary.
/// The long soak (hours of audio, RSS and fd counts) is `scripts/soak.sh` (README, Testing).
final class FaultInjectionTests: XCTestCase {
    /// A config with a socket in a fresh directory and a short clip; returns (dir, config, socket, clip).
    func setUp(_ extra: String = "", clip seconds: Double = 2) throws -> (String, String, String, String) {
        let dir = E2E.tempDir(self)
        let clip = dir + "/clip.wav"
        try E2E.makeClip(seconds: seconds, path: clip)
        let socket = dir + "/tded.sock"
        let config = dir + "/tded.toml"
        try E2E.writeConfig(config, "[engine]\nstep = 16\npost = \"mean\"\n[publish]\nsocket = \"\(socket)\"\n\(extra)\n")
        return (dir, config, socket, clip)
    }

    /// Runs `tded` expecting it to fail: exit status non-zero within `limit` seconds, exactly one
    /// line on stderr containing `expect`, no socket file left behind.
    func assertFailsFast(_ args: [String], dir: String, expect: String, socket: String? = nil, limit: Double = 1.0,
                         file: StaticString = #filePath, line: UInt = #line) throws {
        let t0 = Date()
        let p = try TdedProcess(args, dir: dir)
        guard let code = p.waitExit(timeout: 10) else {
            p.stop()
            return XCTFail("\(args): still running after 10 s (hang); log: \(p.log)", file: file, line: line)
        }
        let dt = Date().timeIntervalSince(t0)
        XCTAssertNotEqual(code, 0, "\(args)", file: file, line: line)
        XCTAssertLessThan(dt, limit, "\(args): took \(dt) s to exit", file: file, line: line)
        let lines = p.log.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, "\(args): expected one stderr line, got: \(p.log)", file: file, line: line)
        XCTAssertTrue(p.log.contains(expect), "\(args): \(p.log) lacks \(expect)", file: file, line: line)
        if let s = socket { XCTAssertFalse(FileManager.default.fileExists(atPath: s), "socket file left behind", file: file, line: line) }
        print("startup failure \(expect): exit \(code) after \(String(format: "%.3f", dt)) s")
    }

    /// Item 1: a socket group that does not exist used to log the error, then hang forever in a
    /// second `Publisher.stop()` (systemd unit stuck in "activating").
    func testUnknownSocketGroupExitsAtOnce() throws {
        let (dir, config, socket, clip) = try setUp("socket_group = \"nosuchgroup\"")
        try assertFailsFast(["run", "--config", config, "--input", clip], dir: dir,
                            expect: "no such group \"nosuchgroup\"", socket: socket)
    }

    /// Every other startup failure path: one line, non-zero, promptly.
    func testEveryStartupFailureExitsAtOnceWithOneLine() throws {
        let (dir, config, socket, clip) = try setUp()
        let run = ["run", "--config", config]
        // input problems
        try assertFailsFast(run + ["--input", dir + "/nope.wav"], dir: dir, expect: "no such file", socket: socket)
        try assertFailsFast(run + ["--input", "/dev/zero"], dir: dir, expect: "not a regular file", socket: socket)
        try assertFailsFast(run + ["--input", dir], dir: dir, expect: "directory", socket: socket)
        // engine / model problems
        try assertFailsFast(run + ["--input", clip, "--method", "learned", "--model", dir + "/none.safetensors"], dir: dir,
                            expect: "no such file", socket: socket)
        let junk = dir + "/junk.safetensors"
        try Data(repeating: 0x41, count: 100).write(to: URL(fileURLWithPath: junk))
        try assertFailsFast(run + ["--input", clip, "--method", "learned", "--model", junk], dir: dir,
                            expect: "junk.safetensors", socket: socket)
        // socket problems
        try assertFailsFast(run + ["--input", clip, "--socket", dir + "/missing/dir/s.sock"], dir: dir, expect: "does not exist")
        try assertFailsFast(run + ["--input", clip, "--socket", dir + "/" + String(repeating: "s", count: 120)], dir: dir,
                            expect: "at most 103")
        FileManager.default.createFile(atPath: dir + "/plain", contents: Data())
        try assertFailsFast(run + ["--input", clip, "--socket", dir + "/plain"], dir: dir, expect: "not a socket")
        // ALSA capture at a rate the engine does not run at
        let c2 = dir + "/rate.toml"
        try E2E.writeConfig(c2, "[capture]\nrate = 48000\n[publish]\nsocket = \"\(socket)\"\n")
        try assertFailsFast(["run", "--config", c2], dir: dir, expect: "capture.rate", socket: socket)
    }

    /// Item 7: `--check-config` runs the same validation as `run`: each case is one line naming
    /// the key, exit 2; the boundary cases pass.
    func testCheckConfigRejectsWhatRunRejects() throws {
        let dir = E2E.tempDir(self)
        let long104 = dir + "/" + String(repeating: "a", count: 104 - dir.utf8.count - 1)
        let long103 = String(long104.dropLast())
        XCTAssertEqual(long104.utf8.count, 104)
        let cases: [(String, String)] = [
            ("[publish]\nsocket = \"\(long104)\"", "publish.socket"),
            ("[publish]\nsocket = \"\(dir)/a\\u0000b.sock\"", "publish.socket"),
            ("[publish]\nsocket = \"\(dir)/s.sock\"\nsocket_group = \"nosuchgroup\"", "publish.socket_group"),
            ("[publish]\nsocket = \"\(dir)/s.sock\"\nsocket_mode = \"+660\"", "publish.socket_mode"),
            ("[publish]\nsocket = \"\(dir)/nodir/s.sock\"", "publish.socket"),
            ("[publish]\nsocket = \"\(dir)/s.sock\"\n[capture]\nrate = 48000", "capture.rate"),
            ("[capture]\ndevice = \"hw:0\\u0000,1\"", "capture.device"),
        ]
        for (i, (toml, key)) in cases.enumerated() {
            let p = dir + "/c\(i).toml"
            try toml.write(toFile: p, atomically: true, encoding: .utf8)
            let (code, _, err) = try runTded(["--check-config", p])
            XCTAssertEqual(code, 2, "\(toml): \(err)")
            XCTAssertTrue(err.contains(key), "\(toml): error does not name \(key): \(err)")
            XCTAssertEqual(err.trimmingCharacters(in: .newlines).split(separator: "\n").count, 1, "not one line: \(err)")
        }
        let ok = dir + "/ok.toml"
        try "[publish]\nsocket = \"\(long103)\"\n".write(toFile: ok, atomically: true, encoding: .utf8)
        let (code, out, err) = try runTded(["--check-config", ok])
        XCTAssertEqual(code, 0, err)
        XCTAssertTrue(out.contains("OK"), out)
        // and `run` really serves a 103-byte path
        let (_, _, _, clip) = try setUp()
        let d = try TdedProcess(["run", "--config", ok, "--input", clip, "--realtime", "--loop", "0"], dir: dir)
        defer { d.stop() }
        XCTAssertTrue(d.waitForLog("publishing on", timeout: 10), d.log)
        XCTAssertNotNil(status(long103))
    }

    func startDaemon(_ args: [String], dir: String) throws -> TdedProcess {
        let d = try TdedProcess(args, dir: dir)
        addTeardownBlock { d.stop() }
        XCTAssertTrue(d.waitForLog("publishing on", timeout: 10), "daemon did not start: \(d.log)")
        return d
    }

    /// Item 2: a SIGHUP with an unchanged file keeps the command-line overrides (method,
    /// publish rate, socket) instead of falling back to the file's values.
    func testSIGHUPKeepsCommandLineOverrides() throws {
        let (dir, _, _, clip) = try setUp()
        let config = dir + "/learned.toml"
        let fileSocket = dir + "/file.sock", flagSocket = dir + "/flag.sock"
        try E2E.writeConfig(config, "[engine]\nmethod = \"learned\"\nstep = 16\n[publish]\nsocket = \"\(fileSocket)\"\n")
        let d = try startDaemon(["run", "--config", config, "--input", clip, "--realtime", "--loop", "0",
                                 "--method", "gcc-phat", "--publish-hz", "5", "--socket", flagSocket], dir: dir)
        XCTAssertEqual(status(flagSocket)?["method"] as? String, "gcc-phat")
        d.signal(SIGHUP)
        XCTAssertTrue(d.waitForLog("configuration reloaded", timeout: 5), d.log)
        let st = status(flagSocket)
        XCTAssertEqual(st?["method"] as? String, "gcc-phat", "reload dropped --method")
        XCTAssertEqual(st?.d("publish_hz"), 5, "reload dropped --publish-hz")
        XCTAssertFalse(d.log.contains("socket"), "false socket-change warning: \(d.log)")
        XCTAssertFalse(FileManager.default.fileExists(atPath: fileSocket))
    }

    /// Item 3: a reload that changes something the running source cannot follow (engine.rate)
    /// is rejected as a whole, including its other changes; the stream stays correct.
    func testSIGHUPRejectsChangesThatCannotApplyLive() throws {
        let (dir, config, socket, clip) = try setUp()
        let d = try startDaemon(["run", "--config", config, "--input", clip, "--realtime", "--loop", "0"], dir: dir)
        let nc = try NCClient(socket: socket, dir: dir)
        let good = try String(contentsOfFile: config, encoding: .utf8)
        try E2E.writeConfig(config, good.replacingOccurrences(of: "[engine]", with: "[engine]\nrate = 48000")
            .replacingOccurrences(of: "[publish]", with: "[publish]\nrate_hz = 5"))
        d.signal(SIGHUP)
        XCTAssertTrue(d.waitForLog("keeping the running configuration", timeout: 5), d.log)
        XCTAssertTrue(d.log.contains("engine.rate"), "reason must name the key: \(d.log)")
        let st = status(socket)
        XCTAssertEqual(st?.i("rate"), 16000)
        XCTAssertEqual(st?.d("publish_hz"), 20, "part of a rejected reload was applied")
        // The clock still runs with wall time and the direction is still right.
        let t0 = Date()
        let n0 = nc.lines.last?.d("t") ?? 0
        sleep(3)
        let advanced = (nc.lines.last?.d("t") ?? 0) - n0
        let wall = Date().timeIntervalSince(t0)
        // 16 kHz audio read as 48 kHz would advance at a third of wall time.
        XCTAssertGreaterThan(advanced, 0.7 * wall, "stream clock runs slow: \(advanced) s of t in \(wall) s")
        XCTAssertLessThan(advanced, 1.3 * wall + 0.2, "stream clock runs fast: \(advanced) s of t in \(wall) s")
        let recent = nc.lines.suffix(20).map { $0.d("raw_azimuth_deg") }.sorted()
        XCTAssertEqual(recent.isEmpty ? .nan : recent[recent.count / 2], E2E.expectedAzimuth, accuracy: 3, "\(recent)")
        nc.kill()
    }
}
