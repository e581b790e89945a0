import Foundation
import LiveTDE
import XCTest

/// End-to-end helpers: the built `tded` binary, real `nc -U` clients, an ALSA `file` PCM fed
/// through a FIFO, and a stereo test recording with a known delay.
enum E2E {
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    /// The binary under test: `$TDED_BIN`, else the `tded` built next to this test bundle (same
    /// configuration as the tests, e.g. `.build/debug/tded`), else `.build/{debug,release}/tded`.
    static var binary: String {
        if let b = ProcessInfo.processInfo.environment["TDED_BIN"] { return b }
        let runner = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        for dir in [runner.deletingLastPathComponent(), runner.deletingLastPathComponent().deletingLastPathComponent()] {
            let p = dir.appendingPathComponent("tded").path
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        for c in ["debug", "release"] {
            let p = repoRoot.appendingPathComponent(".build/\(c)/tded").path
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return repoRoot.appendingPathComponent(".build/debug/tded").path
    }

    static let nc = "/usr/bin/nc"

    /// Test clip: speech-like band-limited noise bursts (syllable-rate envelope), the right
    /// channel `delay` samples later than the left (source nearer the left mic), 16 kHz.
    static let delaySamples = 3
    /// Expected azimuth for a 0.1 m array: asin(343 * 3 / 16000 / 0.1) = 40.02 deg.
    static var expectedAzimuth: Double { asin(343.0 * Double(delaySamples) / 16000 / 0.1) * 180 / .pi }

    static func makeClip(seconds: Double, path: String) throws {
        let n = Int(seconds * 16000)
        var rng: UInt64 = 0x9E37_79B9_7F4A_7C15
        func uniform() -> Float {
            rng = rng &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: rng >> 11) % 2_000_000) / 1_000_000 - 1
        }
        var src = [Float](repeating: 0, count: n + delaySamples)
        // 2-pole resonator around 700 Hz plus first difference: a crude voiced/unvoiced mix.
        var y1: Float = 0, y2: Float = 0
        let r: Float = 0.97, w = Float(2 * Double.pi * 700 / 16000)
        for i in 0..<src.count {
            let x = uniform()
            let y = x + 2 * r * cos(w) * y1 - r * r * y2
            y2 = y1; y1 = y
            let t = Double(i) / 16000
            let env = Float(max(0, sin(2 * .pi * 3.1 * t)) * 0.8 + 0.2)
            src[i] = 0.02 * y * env
        }
        var left = [Float](repeating: 0, count: n), right = left
        for i in 0..<n {
            left[i] = src[i + delaySamples] + 0.002 * uniform()
            right[i] = src[i] + 0.002 * uniform()
        }
        try WAVWriter.write(path: path, channels: [left, right], sampleRate: 16000, format: .pcm16)
    }

    /// Interleaved S16_LE bytes of a 16-bit stereo WAV (exactly the file's samples).
    static func rawS16(_ wav: String) throws -> [UInt8] {
        let a = try WAVReader.read(path: wav)
        var out = [UInt8](); out.reserveCapacity(a.frames * 4)
        for i in 0..<a.frames {
            for x in [a.left[i], a.right[i]] {
                let s = Int16(max(-32768, min(32767, (x * 32768).rounded())))
                let u = UInt16(bitPattern: s)
                out.append(UInt8(u & 0xFF)); out.append(UInt8(u >> 8))
            }
        }
        return out
    }

    /// A scratch directory removed at the end of the test.
    static func tempDir(_ test: XCTestCase) -> String {
        let d = "/tmp/tded-e2e-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        test.addTeardownBlock { try? FileManager.default.removeItem(atPath: d) }
        return d
    }

    /// ALSA configuration defining `pcm.tdetest`: a `file` PCM over the `null` PCM whose
    /// capture data is read from `fifo` (raw interleaved frames in the negotiated format).
    static func alsaConfig(dir: String, fifo: String) throws -> String {
        let path = dir + "/asound.conf"
        let text = """
        </usr/share/alsa/alsa.conf>
        pcm.tdetest {
            type file
            slave.pcm "null"
            file "/dev/null"
            infile "\(fifo)"
            format "raw"
        }
        """
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static func writeConfig(_ path: String, _ text: String) throws {
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }
}

/// A running `tded` with its stdout/stderr captured in files.
final class TdedProcess {
    let process = Process()
    let out: String, err: String
    init(_ args: [String], dir: String, env: [String: String] = [:]) throws {
        out = dir + "/tded.\(UInt32.random(in: 0...UInt32.max)).out"
        err = out.replacingOccurrences(of: ".out", with: ".err")
        FileManager.default.createFile(atPath: out, contents: nil)
        FileManager.default.createFile(atPath: err, contents: nil)
        process.executableURL = URL(fileURLWithPath: E2E.binary)
        process.arguments = args
        var e = ProcessInfo.processInfo.environment
        for (k, v) in env { e[k] = v }
        process.environment = e
        process.standardOutput = FileHandle(forWritingAtPath: out)
        process.standardError = FileHandle(forWritingAtPath: err)
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }
    var pid: Int32 { process.processIdentifier }
    var log: String { (try? String(contentsOfFile: err, encoding: .utf8)) ?? "" }
    var stdout: String { (try? String(contentsOfFile: out, encoding: .utf8)) ?? "" }

    @discardableResult
    func waitForLog(_ s: String, timeout: Double) -> Bool {
        waitUntil(timeout) { self.log.contains(s) }
    }

    func signal(_ sig: Int32) { kill(pid, sig) }

    /// Waits for exit; returns the status or nil on timeout.
    func waitExit(timeout: Double) -> Int32? {
        waitUntil(timeout) { !self.process.isRunning } ? process.terminationStatus : nil
    }

    func stop() {
        if process.isRunning { signal(SIGTERM) }
        if waitExit(timeout: 5) == nil { signal(SIGKILL); _ = waitExit(timeout: 2) }
    }

    /// A daemon outliving its test (a failed assertion before `stop()`) would run on.
    deinit { if process.isRunning { stop() } }
}

/// Polls `cond` every 20 ms until true or `timeout` seconds.
@discardableResult
func waitUntil(_ timeout: Double, _ cond: () -> Bool) -> Bool {
    let end = Date().addingTimeInterval(timeout)
    while Date() < end {
        if cond() { return true }
        usleep(20_000)
    }
    return cond()
}

/// A real `nc -U` client whose output goes to a file.
final class NCClient {
    let process = Process()
    let out: String
    init(socket: String, dir: String) throws {
        out = dir + "/nc.\(UInt32.random(in: 0...UInt32.max)).out"
        FileManager.default.createFile(atPath: out, contents: nil)
        process.executableURL = URL(fileURLWithPath: E2E.nc)
        process.arguments = ["-U", socket]
        process.standardOutput = FileHandle(forWritingAtPath: out)
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }
    var lines: [[String: Any]] {
        return jsonLines((try? String(contentsOfFile: out, encoding: .utf8)) ?? "")
    }
    func kill(_ sig: Int32 = SIGTERM) {
        if process.isRunning { Glibc.kill(process.processIdentifier, sig) }
        process.waitUntilExit()
    }
}

/// Feeds raw frames into the FIFO behind the ALSA `file` PCM at real-time pace, in chunks of
/// at most 4096 bytes (one atomic pipe write each, a multiple of the 256-frame period).
final class FIFOFeeder {
    let fifo: String
    let bytes: [UInt8]
    let bytesPerFrame: Int
    let rate: Double
    private var thread: Thread?
    private let lock = NSLock()
    private var _position = 0
    private var _done = false
    /// Bytes written so far.
    var position: Int { lock.lock(); defer { lock.unlock() }; return _position }
    var done: Bool { lock.lock(); defer { lock.unlock() }; return _done }

    init(fifo: String, bytes: [UInt8], bytesPerFrame: Int = 4, rate: Double = 16000) {
        self.fifo = fifo; self.bytes = bytes; self.bytesPerFrame = bytesPerFrame; self.rate = rate
    }

    /// Opens the FIFO (blocks until tded opens it for reading) and writes `bytes[from..<to]`
    /// at real-time pace, then closes it (the "device" disappears).
    func start(from: Int = 0, to: Int? = nil) {
        let end = to ?? bytes.count
        lock.lock(); _done = false; _position = from; lock.unlock()
        let t = Thread { [self] in
            let fd = open(fifo, O_WRONLY)
            guard fd >= 0 else { lock.lock(); _done = true; lock.unlock(); return }
            signal(SIGPIPE, SIG_IGN)
            // <= PIPE_BUF (4096 bytes) so each write is atomic, and a multiple of the
            // 256-frame period for 2 x 16-bit (1024 frames) and 4 x 32-bit (256 frames).
            let chunk = min(1024 * bytesPerFrame, 4096)
            let t0 = Date()
            var sent = 0
            var i = from
            while i < end {
                let n = min(chunk, end - i)
                let due = t0.addingTimeInterval(Double(sent) / rate)
                let wait = due.timeIntervalSinceNow
                if wait > 0 { usleep(useconds_t(wait * 1e6)) }
                let w = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + i, n) }
                if w <= 0 { break }
                i += w
                sent += w / bytesPerFrame
                lock.lock(); _position = i; lock.unlock()
            }
            close(fd)
            lock.lock(); _done = true; lock.unlock()
        }
        thread = t
        t.start()
    }

    func waitDone(timeout: Double) -> Bool { waitUntil(timeout) { self.done } }
}

/// Runs `tded analyze` on `file` with extra args; returns the JSON lines.
/// The JSON objects among `text`'s lines (tded's published or printed lines).
func jsonLines<S: StringProtocol>(_ text: S) -> [[String: Any]] {
    text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
}

func analyze(_ file: String, _ args: [String]) throws -> [[String: Any]] {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: E2E.binary)
    p.arguments = ["analyze"] + args + [file]
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = FileHandle.nullDevice
    try p.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return jsonLines(String(decoding: data, as: UTF8.self))
}

/// Runs `tded` with arguments to completion; returns (status, stdout, stderr).
func runTded(_ args: [String], env: [String: String] = [:], binary: String = E2E.binary,
             cwd: String? = nil) throws -> (Int32, String, String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: binary)
    if let c = cwd { p.currentDirectoryURL = URL(fileURLWithPath: c) }
    p.arguments = args
    var e = ProcessInfo.processInfo.environment
    for (k, v) in env { e[k] = v }
    p.environment = e
    let o = Pipe(), er = Pipe()
    p.standardOutput = o; p.standardError = er
    try p.run()
    let od = o.fileHandleForReading.readDataToEndOfFile()
    let ed = er.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: od, as: UTF8.self), String(decoding: ed, as: UTF8.self))
}

/// Asks the daemon for its status over the socket (what `tded status --json` does).
func status(_ socket: String) -> [String: Any]? {
    guard let line = UnixSocket.request(socket, "status", timeoutSeconds: 10) else { return nil }
    return try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
}

extension Dictionary where Key == String, Value == Any {
    func d(_ k: String) -> Double { (self[k] as? NSNumber)?.doubleValue ?? .nan }
    func i(_ k: String) -> Int { (self[k] as? NSNumber)?.intValue ?? -1 }
}

/// Compares the daemon's raw per-update values with `tded analyze` lines at the same `t`:
/// `raw_delay_ms`, `raw_azimuth_deg` and `votes` must equal analyze's `delay_ms`, `azimuth_deg`
/// and `votes` exactly (both print through one formatter with the same digits, so equal values
/// print equal text). Returns (matched, mismatched descriptions).
func compareWithAnalyze(_ live: [[String: Any]], _ offline: [[String: Any]]) -> (Int, [String]) {
    var byT: [Int: [String: Any]] = [:]
    for a in offline { byT[Int((a.d("t") * 1000).rounded())] = a }
    var matched = 0
    var bad: [String] = []
    for l in live {
        guard let a = byT[Int((l.d("t") * 1000).rounded())] else { continue }
        if a.d("delay_ms") == l.d("raw_delay_ms") && a.d("azimuth_deg") == l.d("raw_azimuth_deg")
            && a.i("votes") == l.i("votes") {
            matched += 1
        } else {
            bad.append("t=\(l.d("t")): live \(l.d("raw_delay_ms")) ms / \(l.i("votes")) votes vs analyze \(a.d("delay_ms")) ms / \(a.i("votes")) votes")
        }
    }
    return (matched, bad)
}

/// Writes a seeded random model of the shipped (v1) layout at the given widths (R = 768,
/// M = 1; docs/encoder-spec.md "Export format"). Widths that are not multiples of 16 are where
/// OpenBLAS kernels take different code paths for different GEMM shapes.
func writeRandomModel(path: String, width: Int, emb: Int, seed: UInt64) throws {
    var layers: [(inC: Int, outC: Int, k: Int, d: Int, act: String)] = [(256, width, 1, 8, "relu")]
    for d in [8, 24, 72, 216] { layers.append((width, width, 3, d, "relu")) }
    layers.append((width, width, 2, 128, "relu"))
    layers.append((width, emb, 1, 8, "none"))
    var state = seed
    func gaussian() -> Float {  // SplitMix64 + Box-Muller
        func u() -> Double {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return Double((z ^ (z >> 31)) >> 11) / Double(1 << 53)
        }
        let a = max(u(), 1e-300), b = u()
        return Float((-2 * log(a)).squareRoot() * cos(2 * Double.pi * b))
    }
    var entries: [String] = []
    var payload: [UInt8] = []
    func tensor(_ name: String, _ shape: [Int], _ values: [Float]) {
        let b = payload.count
        for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { payload += $0 } }
        entries.append("\"\(name)\":{\"dtype\":\"F32\",\"shape\":\(shape),\"data_offsets\":[\(b),\(payload.count)]}")
    }
    for (i, l) in layers.enumerated() {
        let s = (2 / Float(l.inC * l.k)).squareRoot()
        tensor("layers.\(i).weight", [l.outC, l.inC, l.k], (0..<(l.outC * l.inC * l.k)).map { _ in gaussian() * s })
        tensor("layers.\(i).bias", [l.outC], (0..<l.outC).map { _ in gaussian() * 0.05 })
    }
    let ls = layers.map { "{\"in\":\($0.inC),\"out\":\($0.outC),\"kernel\":\($0.k),\"dilation\":\($0.d),\"activation\":\"\($0.act)\"}" }
    let header = "{\"format\":\"tded-stream-encoder\",\"version\":1,\"sample_rate\":16000,\"n_fft\":256,\"hop\":8,"
        + "\"window\":1024,\"tau\":0.05,\"max_delay\":24,\"phat_beta\":0.5,\"column_norm\":true,"
        + "\"layers\":[\(ls.joined(separator: ","))],\"embedding_dim\":\(emb),\"objective\":\"none\",\"training\":{\"note\":\"e2e test\"}}"
    let meta = try JSONSerialization.data(withJSONObject: ["tded_model": header], options: [.sortedKeys])
    entries.insert("\"__metadata__\":" + String(decoding: meta, as: UTF8.self), at: 0)
    let h = Array(("{" + entries.joined(separator: ",") + "}").utf8)
    var out: [UInt8] = []
    withUnsafeBytes(of: UInt64(h.count).littleEndian) { out += $0 }
    try Data(out + h + payload).write(to: URL(fileURLWithPath: path))
}
