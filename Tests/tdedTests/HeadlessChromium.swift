import Foundation

/// A headless Chromium driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`:
/// the browser reads NUL-terminated JSON commands on fd 3 and writes replies and events on
/// fd 4), so no WebSocket client and no TCP debugging port are needed.
final class HeadlessChromium {
    struct CDPError: Error, CustomStringConvertible { let description: String }

    /// `$CHROMIUM`, else the first of the usual Debian/Ubuntu paths that is executable.
    static var binary: String? {
        if let b = ProcessInfo.processInfo.environment["CHROMIUM"], !b.isEmpty { return b }
        return ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]
            .first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    let pid: pid_t
    private let toBrowser: CInt
    private let fromBrowser: CInt
    private var nextID = 1
    private var buffer: [UInt8] = []
    private(set) var sessionID: String?
    let stderrPath: String

    /// Starts the browser with a scratch profile in `dir`, window `width` x `height`.
    let width: Int, height: Int

    init(binary: String, dir: String, width: Int = 960, height: Int = 640) throws {
        self.width = width; self.height = height
        var a: [CInt] = [0, 0], b: [CInt] = [0, 0]
        guard pipe(&a) == 0, pipe(&b) == 0 else { throw CDPError(description: "pipe failed") }
        _ = fcntl(a[1], F_SETFD, FD_CLOEXEC); _ = fcntl(b[0], F_SETFD, FD_CLOEXEC)
        // a: we write a[1] -> browser reads fd 3; b: browser writes fd 4 -> we read b[0].
        func high(_ fd: CInt) -> CInt { let n = fcntl(fd, F_DUPFD_CLOEXEC, 10); close(fd); return n }
        let childIn = high(a[0]), childOut = high(b[1])
        toBrowser = a[1]; fromBrowser = b[0]
        stderrPath = dir + "/chromium.err"
        var fa = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fa)
        defer { posix_spawn_file_actions_destroy(&fa) }
        posix_spawn_file_actions_adddup2(&fa, childIn, 3)
        posix_spawn_file_actions_adddup2(&fa, childOut, 4)
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&fa, 2, stderrPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        let args = [binary, "--headless", "--remote-debugging-pipe", "--no-sandbox", "--disable-gpu",
                    "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
                    "--disable-extensions", "--disable-background-networking", "--disable-sync",
                    "--mute-audio", "--hide-scrollbars", "--user-data-dir=\(dir)/profile",
                    "--window-size=\(width),\(height)", "about:blank"]
        var argv: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var p: pid_t = 0
        let rc = posix_spawn(&p, binary, &fa, nil, &argv, environ)
        close(childIn); close(childOut)
        guard rc == 0 else { throw CDPError(description: "posix_spawn \(binary): \(String(cString: strerror(rc)))") }
        pid = p
    }

    deinit { quit() }

    private var quitDone = false
    /// Closes the browser (politely, then SIGKILL).
    func quit() {
        guard !quitDone else { return }
        quitDone = true
        _ = try? call("Browser.close", timeout: 3)
        close(toBrowser)
        var st: CInt = 0
        if !waitUntil(5, { waitpid(pid, &st, WNOHANG) == pid }) {
            kill(pid, SIGKILL); waitpid(pid, &st, 0)
        }
        close(fromBrowser)
    }

    /// Sends one command (in the attached page session unless `browserLevel`) and returns its result.
    @discardableResult
    func call(_ method: String, _ params: [String: Any] = [:], browserLevel: Bool = false, timeout: Double = 15) throws -> [String: Any] {
        let id = nextID; nextID += 1
        var msg: [String: Any] = ["id": id, "method": method, "params": params]
        if !browserLevel, let s = sessionID { msg["sessionId"] = s }
        var data = try JSONSerialization.data(withJSONObject: msg)
        data.append(0)
        let ok = data.withUnsafeBytes { raw -> Bool in
            var off = 0
            while off < raw.count {
                let n = write(toBrowser, raw.baseAddress! + off, raw.count - off)
                if n <= 0 { return false }
                off += n
            }
            return true
        }
        guard ok else { throw CDPError(description: "\(method): browser pipe closed") }
        let end = Date().addingTimeInterval(timeout)
        while true {
            while let z = buffer.firstIndex(of: 0) {
                let m = Data(buffer[0..<z]); buffer.removeSubrange(0...z)
                guard let obj = try? JSONSerialization.jsonObject(with: m) as? [String: Any],
                      (obj["id"] as? NSNumber)?.intValue == id else { continue }  // events and stale replies
                if let e = obj["error"] { throw CDPError(description: "\(method): \(e)") }
                return obj["result"] as? [String: Any] ?? [:]
            }
            let left = end.timeIntervalSinceNow
            if left <= 0 { throw CDPError(description: "\(method): no reply in \(timeout) s") }
            var pfd = pollfd(fd: fromBrowser, events: Int16(POLLIN), revents: 0)
            if poll(&pfd, 1, Int32(min(left, 1) * 1000)) <= 0 { continue }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = read(fromBrowser, &chunk, chunk.count)
            if n <= 0 { throw CDPError(description: "\(method): browser exited (\((try? String(contentsOfFile: stderrPath, encoding: .utf8))?.suffix(400) ?? ""))") }
            buffer.append(contentsOf: chunk[0..<n])
        }
    }

    /// Attaches to the first page target and navigates it to `url`.
    func open(_ url: String) throws {
        let targets = try call("Target.getTargets", browserLevel: true)["targetInfos"] as? [[String: Any]] ?? []
        let targetID: String
        if let page = targets.first(where: { $0["type"] as? String == "page" }), let t = page["targetId"] as? String {
            targetID = t
        } else {
            targetID = try call("Target.createTarget", ["url": "about:blank"], browserLevel: true)["targetId"] as? String ?? ""
        }
        sessionID = try call("Target.attachToTarget", ["targetId": targetID, "flatten": true], browserLevel: true)["sessionId"] as? String
        try call("Page.enable")
        // The viewport exactly width x height (the window size includes no browser chrome in
        // some headless versions and some in others).
        try call("Emulation.setDeviceMetricsOverride", ["width": width, "height": height, "deviceScaleFactor": 1, "mobile": false])
        try call("Page.navigate", ["url": url])
    }

    /// Evaluates `expression` in the page; returns its JSON value.
    func evaluate(_ expression: String) throws -> Any? {
        let r = try call("Runtime.evaluate", ["expression": expression, "returnByValue": true])
        if let ex = r["exceptionDetails"] { throw CDPError(description: "evaluate: \(ex)") }
        return (r["result"] as? [String: Any])?["value"]
    }

    /// The `#readout` element's data attributes (empty before the page has loaded).
    func readout() -> [String: String] {
        let v = try? evaluate("(() => { const r = document.getElementById('readout'); return r ? Object.assign({}, r.dataset) : {}; })()")
        return v as? [String: String] ?? [:]
    }

    /// PNG of the viewport.
    func screenshot() throws -> Data {
        let r = try call("Page.captureScreenshot", ["format": "png"])
        guard let b64 = r["data"] as? String, let d = Data(base64Encoded: b64) else { throw CDPError(description: "no screenshot data") }
        return d
    }

    /// JavaScript heap in use after a forced garbage collection, bytes.
    func heapUsedAfterGC() throws -> Int {
        try call("HeapProfiler.collectGarbage")
        let r = try call("Runtime.getHeapUsage")
        return (r["usedSize"] as? NSNumber)?.intValue ?? -1
    }

    /// Number of DOM nodes in the page (`Memory.getDOMCounters`).
    func domNodes() throws -> Int {
        (try call("Memory.getDOMCounters")["nodes"] as? NSNumber)?.intValue ?? -1
    }
}
