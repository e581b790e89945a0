import Foundation
import XCTest

/// Helpers for the viewer tests: a `tded view` process on a free port, a replaying daemon.
enum ViewE2E {
    /// The demo recording (source at +30 deg on a 0.1 m array).
    static let demo = E2E.repoRoot.appendingPathComponent("examples/demo.wav").path
    static let demoAzimuth = 30.0

    /// A config for a light daemon that a debug build runs in real time: step 16, and the
    /// band-limited sub-sample peak (the demo's delay is 2.33 samples; integer lags give 25 deg).
    static func lightConfig(dir: String, socket: String) throws -> String {
        let path = dir + "/light.toml"
        try E2E.writeConfig(path, """
        [capture]
        # a long ring: on a loaded machine a debug-build engine may lag, but must not drop
        ring_seconds = 30
        [engine]
        step = 16
        subsample = "upsampled"
        [publish]
        socket = "\(socket)"
        """)
        return path
    }

    /// Starts a daemon replaying the demo in real time, forever, on `socket`.
    static func startDemoDaemon(_ test: XCTestCase, dir: String, socket: String, extra: [String] = []) throws -> TdedProcess {
        let cfg = try lightConfig(dir: dir, socket: socket)
        let d = try TdedProcess(["run", "--config", cfg, "--input", demo, "--realtime", "--loop", "0"] + extra, dir: dir)
        test.addTeardownBlock { d.stop() }
        XCTAssertTrue(d.waitForLog("publishing on", timeout: 15), "daemon did not start: \(d.log)")
        return d
    }

    /// Starts `tded view` on 127.0.0.1 and a free port; returns it and its URL.
    static func startView(_ test: XCTestCase, dir: String, socket: String) throws -> (TdedProcess, String) {
        let v = try TdedProcess(["view", "--socket", socket, "--listen", "127.0.0.1:0"], dir: dir)
        test.addTeardownBlock { v.stop() }
        var url = ""
        XCTAssertTrue(waitUntil(15) {
            guard let r = v.stdout.range(of: #"http://127\.0\.0\.1:[0-9]+/"#, options: .regularExpression) else { return false }
            url = String(v.stdout[r]); return true
        }, "tded view did not report its address: \(v.stdout) \(v.log)")
        return (v, url)
    }
}
