import Foundation

/// A stand-in for the daemon's socket: accepts clients on a Unix socket and writes whatever
/// lines the test gives it to every connected client. For tests of clients' reactions to
/// gaps and unknown versions, which a real daemon does not produce on demand.
final class FakeDaemon {
    let path: String
    private let listenFD: CInt
    private var clients: [CInt] = []
    private let lock = NSLock()
    private var thread: Thread?
    private var closed = false

    init(path: String) throws {
        self.path = path
        unlink(path)
        listenFD = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in path.utf8.enumerated() { raw[i] = b }
        }
        let ok = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listenFD, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0 }
        }
        guard ok, listen(listenFD, 16) == 0 else { throw NSError(domain: "FakeDaemon", code: Int(errno)) }
        let t = Thread { [self] in
            while true {
                let c = accept(listenFD, nil, nil)
                if c < 0 { return }
                lock.lock(); clients.append(c); lock.unlock()
            }
        }
        thread = t
        t.start()
    }

    var clientCount: Int { lock.lock(); defer { lock.unlock() }; return clients.count }

    /// Writes `line` + newline to every client.
    func send(_ line: String) {
        let bytes = Array((line + "\n").utf8)
        lock.lock(); defer { lock.unlock() }
        for c in clients { _ = Glibc.send(c, bytes, bytes.count, Int32(MSG_NOSIGNAL)) }
    }

    /// A schema-1 update line with this `seq` (and `v`).
    static func line(seq: Int, azimuth: Double = 30, v: Int = 1) -> String {
        "{\"v\":\(v),\"t\":\(Double(seq) * 0.05),\"delay_ms\":0.1458,\"azimuth_deg\":\(azimuth),\"confidence\":0.9,\"level_db\":-30.0,\"method\":\"gcc-phat\",\"seq\":\(seq),\"raw_delay_ms\":0.14583,\"raw_azimuth_deg\":\(azimuth),\"votes\":100,\"flags\":[]}"
    }

    func close() {
        lock.lock()
        if closed { lock.unlock(); return }
        closed = true
        for c in clients { Glibc.close(c) }
        clients.removeAll()
        lock.unlock()
        shutdown(listenFD, Int32(SHUT_RDWR))
        Glibc.close(listenFD)
        unlink(path)
    }

    deinit { close() }
}

/// Any program run with its stdout and stderr captured in files.
final class Spawned {
    let process = Process()
    let out: String, err: String
    init(_ exe: String, _ args: [String], dir: String) throws {
        out = dir + "/p.\(UInt32.random(in: 0...UInt32.max)).out"
        err = out.replacingOccurrences(of: ".out", with: ".err")
        FileManager.default.createFile(atPath: out, contents: nil)
        FileManager.default.createFile(atPath: err, contents: nil)
        process.executableURL = URL(fileURLWithPath: exe)
        process.arguments = args
        process.standardOutput = FileHandle(forWritingAtPath: out)
        process.standardError = FileHandle(forWritingAtPath: err)
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }
    var stdout: String { (try? String(contentsOfFile: out, encoding: .utf8)) ?? "" }
    var stderr: String { (try? String(contentsOfFile: err, encoding: .utf8)) ?? "" }
    func waitExit(timeout: Double) -> Int32? {
        waitUntil(timeout) { !self.process.isRunning } ? process.terminationStatus : nil
    }
    func stop() {
        if process.isRunning { kill(process.processIdentifier, SIGTERM) }
        if waitExit(timeout: 5) == nil { kill(process.processIdentifier, SIGKILL); _ = waitExit(timeout: 2) }
    }
    deinit { stop() }
}
