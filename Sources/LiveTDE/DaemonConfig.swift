import Engine
import Foundation
import Logging
import TOMLKit

/// A configuration problem: one line that names the key and the expected form.
public struct ConfigError: Error, CustomStringConvertible, Equatable {
    /// Dotted key (`capture.rate`), or `""` for file-level problems.
    public let key: String
    /// Human-readable explanation, including the expected form.
    public let message: String
    /// Creates an error.
    public init(key: String, _ message: String) { self.key = key; self.message = message }
    /// `config: capture.rate: expected ...`
    public var description: String { key.isEmpty ? "config: \(message)" : "config: \(key): \(message)" }
}

/// Sample formats the capture side negotiates with ALSA.
public enum CaptureFormat: String, Sendable, CaseIterable {
    /// Signed 16-bit little endian.
    case s16 = "S16_LE"
    /// Signed 32-bit little endian.
    case s32 = "S32_LE"
    /// 32-bit IEEE float little endian.
    case float = "FLOAT_LE"
    /// Bytes per sample.
    public var bytes: Int { self == .s16 ? 2 : 4 }
}

/// Everything the daemon reads from `tded.toml`. Every field has the default documented in
/// `config/tded.toml`; `DaemonConfig()` is the all-defaults configuration.
public struct DaemonConfig: Equatable, Sendable {
    /// `[capture]`: where audio comes from.
    public struct Capture: Equatable, Sendable {
        /// ALSA PCM name (`default`, `hw:1,0`, `plughw:CARD=Array`, or any PCM in the ALSA config).
        public var device = "default"
        /// Sample rate requested from the device, Hz. The engine runs at `engine.rate`; a device
        /// rate that differs is resampled on the capture side (`CaptureResampler`).
        public var rate = 16000
        /// Sample format requested from the device.
        public var format = CaptureFormat.s16
        /// Channels to open on the device (2 for a stereo array, more for a multi-mic device).
        public var deviceChannels = 2
        /// Zero-based device channels used as `[left, right]`.
        public var channels = [0, 1]
        /// ALSA period size in frames.
        public var periodFrames = 256
        /// ALSA buffer size in frames (at least 2 periods).
        public var bufferFrames = 2048
        /// Ring buffer between capture and engine, seconds of audio (rounded up to a power of two).
        public var ringSeconds = 2.0
        /// Longest wait between reconnection attempts when the device is gone, seconds.
        public var retryMaxSeconds = 5.0
        /// Creates defaults.
        public init() {}
    }

    /// `[engine]`: the estimator (same meaning as the `tded analyze` options).
    public struct Engine: Equatable, Sendable {
        /// The estimator (built by `EstimatorFactory`).
        public var method = EstimatorMethod.gccPhat
        /// Path of the learned model (`.safetensors`), only for `method = "learned"`; empty means
        /// `$TDED_MODEL`, else the shipped `models/tded-stream-v1.safetensors` (see `ModelLoader`).
        public var model = ""
        /// Path of the learned pooling model, only for `pooling = "learned"`; empty means
        /// `$TDED_POOLING_MODEL`, else the shipped `models/tded-gccmask-live-v2.safetensors`
        /// (Hann taper) or `tded-gccmask-v10` (rectangular). Also read by `pooling = "auto"`.
        public var poolingModel = ""
        /// Engine sample rate, Hz.
        public var rate = 16000
        /// Analysis window, samples.
        public var window = 1024
        /// Samples between vote windows; 0 = the method's default (16 for gcc-phat, 8 for
        /// learned; see `EstimatorOptions.defaultStep`).
        public var step = 0
        /// Largest delay searched, milliseconds; nil = `"auto"` (see
        /// `EstimatorOptions.autoMaxDelayMs`: the geometry's limit).
        public var maxDelayMs: Double? = nil
        /// How an update combines its windows: `pooled` (evidence summed, one refined peak),
        /// `mode` (RANSAC-like vote) or `mean`.
        public var post = VotePost.pooled
        /// GCC-PHAT weighting of pooled cross-power spectra: `auto` (the learned per-update
        /// weighting, else phat+coh with a logged note; see `PoolingChoice`) or a
        /// `GCCPHATConfig.PoolWeighting` by name.
        public var pooling = PoolingChoice.auto
        /// With `post = "pooled"`: time constant (s) of the exponentially weighted evidence the
        /// live estimate keeps; 0 = only the windows of the last `span` samples.
        public var memorySeconds = EstimatorOptions.defaultMemorySeconds
        /// gcc-phat, `post = "pooled"`: frequency band used (`"LO-HI"` in Hz, or `"all"`).
        public var band = FrequencyBand.all
        /// Cut-off (Hz) of the input high-pass in front of every estimator; 0 = off.
        public var highpassHz = PipelineConfig.defaultHighpassHz
        /// Per-window sub-sample refinement: `none`, `parabolic` or `upsampled` (x8).
        public var subsample = SubsampleChoice.none
        /// GCC-PHAT window shape: `hann` or `rectangular`.
        public var taper = GCCPHATConfig.Taper.hann
        /// Samples of audio analysed by each update (>= window); 1600 = 0.1 s at 16 kHz.
        public var span = 1600
        /// Microphone spacing, metres.
        public var micDistance = 0.1
        /// Speed of sound, m/s.
        public var soundSpeed = 343.0
        /// Most simultaneous sources tracked and published in the line's `sources` array (1...4).
        public var maxSources = 2
        /// Updates whose confidence is below this are flagged `low_confidence` and the published
        /// (smoothed) delay holds its last value instead of taking them; nil = `"auto"`, the
        /// estimator's default (`PipelineConfig.learnedMinConfidence` with the learned
        /// weighting, else `classicalMinConfidence`).
        public var minConfidence: Double? = nil
        /// Creates defaults.
        public init() {}
    }

    /// `[publish]`: the socket clients read.
    public struct Publish: Equatable, Sendable {
        /// Unix stream socket path. Ignored when systemd passes a socket (`LISTEN_FDS`).
        public var socket = "/run/tded.sock"
        /// Permission bits of the socket file (octal string in the file, e.g. `"0660"`).
        public var socketMode = 0o660
        /// Group owning the socket file; empty keeps the daemon's group.
        public var socketGroup = ""
        /// Updates published per second.
        public var rateHz = 20.0
        /// Lines queued per client before further lines are skipped for that client.
        public var clientQueueLines = 64
        /// A client that has skipped this many lines in a row is disconnected.
        public var maxSkippedLines = 200
        /// Creates defaults.
        public init() {}
    }

    /// `[log]`
    public struct Log: Equatable, Sendable {
        /// `trace`, `debug`, `info`, `notice`, `warning`, `error` or `critical` (swift-log's levels).
        public var level = Logger.Level.info
        /// Creates defaults.
        public init() {}
    }

    /// Capture settings.
    public var capture = Capture()
    /// Engine settings.
    public var engine = Engine()
    /// Publisher settings.
    public var publish = Publish()
    /// Logging settings.
    public var log = Log()

    /// All defaults.
    public init() {}

    /// The path used when no `--config` is given and it exists.
    public static let defaultPath = "/etc/tded/tded.toml"

    /// Parses and validates a TOML document. Missing keys keep their defaults; unknown keys,
    /// wrong types and out-of-range values throw a `ConfigError` naming the key.
    public static func parse(_ text: String) throws -> DaemonConfig {
        try parseCache.result(for: text) { try parseUncached(text) }.get()
    }

    /// TOMLKit never frees a parsed document (its C++ table has no delete; ~1.7 KB per parse,
    /// measured in ReloadMemoryTests), so results are kept per text: re-reading an unchanged
    /// file on SIGHUP, or switching between a few versions of it, parses nothing new. At most
    /// `ParseCache.limit` distinct texts are kept (beyond that each new text costs one parse).
    static let parseCache = ParseCache()

    final class ParseCache: @unchecked Sendable {
        static let limit = 64
        private let lock = NSLock()
        private var results: [String: Result<DaemonConfig, Error>] = [:]
        private var order: [String] = []

        func result(for text: String, _ parse: () throws -> DaemonConfig) -> Result<DaemonConfig, Error> {
            lock.lock()
            if let r = results[text] { lock.unlock(); return r }
            lock.unlock()
            let r = Result { try parse() }
            lock.lock()
            if results[text] == nil {
                if order.count >= ParseCache.limit { results.removeValue(forKey: order.removeFirst()) }
                order.append(text)
                results[text] = r
            }
            lock.unlock()
            return r
        }
    }

    private static func parseUncached(_ text: String) throws -> DaemonConfig {
        try rejectNUL(text)
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let e as TOMLParseError {
            throw ConfigError(key: "", "TOML syntax error at line \(e.source.begin.line), column \(e.source.begin.column): \(e.description)")
        } catch {
            throw ConfigError(key: "", "TOML syntax error: \(error)")
        }
        var c = DaemonConfig()
        let sections = ["capture", "engine", "publish", "log"]
        for key in table.keys where !sections.contains(key) {
            throw ConfigError(key: key, "unknown key or section (expected one of [\(sections.joined(separator: "], ["))])")
        }
        let r = Reader(table: table)
        try r.section("capture", keys: ["device", "rate", "format", "device_channels", "channels",
                                        "period_frames", "buffer_frames", "ring_seconds", "retry_max_seconds"])
        if let v = try r.string("capture.device") {
            guard !v.isEmpty else { throw ConfigError(key: "capture.device", "expected a non-empty ALSA PCM name such as \"default\" or \"hw:1,0\"") }
            c.capture.device = v
        }
        if let v = try r.int("capture.rate", 8000...192_000) { c.capture.rate = v }
        if let v = try r.string("capture.format") {
            guard let f = CaptureFormat(rawValue: v.uppercased()) else {
                throw ConfigError(key: "capture.format", "expected one of \"S16_LE\", \"S32_LE\", \"FLOAT_LE\", got \"\(v)\"")
            }
            c.capture.format = f
        }
        if let v = try r.int("capture.device_channels", 1...64) { c.capture.deviceChannels = v }
        if let v = try r.intArray("capture.channels") {
            guard v.count == 2, v.allSatisfy({ $0 >= 0 && $0 < c.capture.deviceChannels }), v[0] != v[1] else {
                throw ConfigError(key: "capture.channels", "expected two different channel indices [left, right], each in 0...\(c.capture.deviceChannels - 1) (capture.device_channels = \(c.capture.deviceChannels)), got \(v)")
            }
            c.capture.channels = v
        } else if c.capture.channels.contains(where: { $0 >= c.capture.deviceChannels }) {
            throw ConfigError(key: "capture.device_channels", "must be at least 2 unless capture.channels picks the channels to use")
        }
        if let v = try r.int("capture.period_frames", 16...65_536) { c.capture.periodFrames = v }
        if let v = try r.int("capture.buffer_frames", 32...1_048_576) { c.capture.bufferFrames = v }
        if c.capture.bufferFrames < 2 * c.capture.periodFrames {
            throw ConfigError(key: "capture.buffer_frames", "expected at least 2 x capture.period_frames (\(2 * c.capture.periodFrames)), got \(c.capture.bufferFrames)")
        }
        if let v = try r.double("capture.ring_seconds", 0.1...60) { c.capture.ringSeconds = v }
        if let v = try r.double("capture.retry_max_seconds", 0.1...600) { c.capture.retryMaxSeconds = v }

        try r.section("engine", keys: ["method", "model", "pooling_model", "rate", "window", "step", "max_delay_ms", "post",
                                       "pooling", "memory_s", "band", "highpass_hz", "subsample", "taper", "span", "mic_distance",
                                       "sound_speed", "max_sources", "min_confidence"])
        if let v = try r.choice("engine.method", EstimatorMethod.self) { c.engine.method = v }
        if let v = try r.string("engine.model") { c.engine.model = v }
        if let v = try r.string("engine.pooling_model") { c.engine.poolingModel = v }
        if let v = try r.int("engine.rate", 8000...192_000) { c.engine.rate = v }
        if let v = try r.int("engine.window", 64...65_536) {
            guard v & (v - 1) == 0 else { throw ConfigError(key: "engine.window", "expected a power of two in 64...65536, got \(v)") }
            c.engine.window = v
        }
        if let v = try r.int("engine.step", 0...65_536) { c.engine.step = v }
        if let v = try r.autoOrDouble("engine.max_delay_ms", 0.01...100) { c.engine.maxDelayMs = v }
        if let v = try r.choice("engine.post", VotePost.self) { c.engine.post = v }
        if let v = try r.string("engine.pooling") {
            guard let w = PoolingChoice(parsing: v) else {
                throw ConfigError(key: "engine.pooling", "expected \"auto\", \"phat\", \"srp\", \"phat-beta=B\" (0 < B <= 1), \"coh\", \"ml\", \"snr\", or a PHAT with \"+snr[=K]\", \"+coh\" or \"+ml\", got \"\(v)\"")
            }
            c.engine.pooling = w
        }
        if let v = try r.double("engine.memory_s", 0...60) { c.engine.memorySeconds = v }
        if let v = try r.string("engine.band") {
            guard let band = FrequencyBand(parsing: v) else {
                throw ConfigError(key: "engine.band", "expected \"all\" or \"LO-HI\" in Hz with 0 <= LO < HI, got \"\(v)\"")
            }
            c.engine.band = band
        }
        if let v = try r.double("engine.highpass_hz", 0...96_000) {
            guard v < 0.45 * Double(c.engine.rate) else {
                throw ConfigError(key: "engine.highpass_hz", "expected 0 (off) or a cut-off below 0.45 x engine.rate (\(0.45 * Double(c.engine.rate)) Hz), got \(v)")
            }
            c.engine.highpassHz = v
        }
        if let v = try r.choice("engine.subsample", SubsampleChoice.self) { c.engine.subsample = v }
        if let v = try r.choice("engine.taper", GCCPHATConfig.Taper.self) { c.engine.taper = v }
        if let v = try r.int("engine.span", 64...1_048_576) { c.engine.span = v }
        if c.engine.span < c.engine.window {
            throw ConfigError(key: "engine.span", "expected at least engine.window (\(c.engine.window)) samples, got \(c.engine.span)")
        }
        if let v = try r.double("engine.mic_distance", 0.001...10) { c.engine.micDistance = v }
        if let v = try r.double("engine.sound_speed", 100...2000) { c.engine.soundSpeed = v }
        if let v = try r.int("engine.max_sources", 1...SourceSearchConfig.sourceLimit) { c.engine.maxSources = v }
        if let v = try r.autoOrDouble("engine.min_confidence", 0...1) { c.engine.minConfidence = v }

        try r.section("publish", keys: ["socket", "socket_mode", "socket_group", "rate_hz",
                                        "client_queue_lines", "max_skipped_lines"])
        if let v = try r.string("publish.socket") {
            guard v.hasPrefix("/"), v.utf8.count <= Publisher.maxSocketPathBytes else {
                throw ConfigError(key: "publish.socket", "expected an absolute path of at most \(Publisher.maxSocketPathBytes) bytes (the Unix socket address limit), got \(v.utf8.count) bytes: \"\(v)\"")
            }
            c.publish.socket = v
        }
        if let v = try r.string("publish.socket_mode") {
            guard v.count >= 3, v.count <= 4, v.allSatisfy({ ("0"..."7").contains($0) }),
                  let m = Int(v, radix: 8), m >= 0, m <= 0o777 else {
                throw ConfigError(key: "publish.socket_mode", "expected an octal mode string such as \"0660\", got \"\(v)\"")
            }
            c.publish.socketMode = m
        }
        if let v = try r.string("publish.socket_group") { c.publish.socketGroup = v }
        if let v = try r.double("publish.rate_hz", 0.1...1000) { c.publish.rateHz = v }
        if let v = try r.int("publish.client_queue_lines", 1...100_000) { c.publish.clientQueueLines = v }
        if let v = try r.int("publish.max_skipped_lines", 1...10_000_000) { c.publish.maxSkippedLines = v }

        try r.section("log", keys: ["level"])
        if let v = try r.choice("log.level", Logger.Level.self) { c.log.level = v }
        return c
    }

    /// The TOML library cuts strings at a NUL byte (a `\u0000` escape) without a word, which
    /// would silently shorten a path; such a string is an error naming its key.
    static func rejectNUL(_ text: String) throws {
        var section = ""
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("[") && !line.hasPrefix("[[") {
                section = String(line.dropFirst().prefix { $0 != "]" }).trimmingCharacters(in: .whitespaces)
            }
            let u = Array(raw.utf8)
            var has = u.contains(0)
            var k = 0
            while !has && k < u.count {
                if u[k] == UInt8(ascii: "\\") {
                    // An escape: \u0000 or \U00000000 is NUL; \\ is a literal backslash.
                    let rest = String(decoding: u[(k + 1)...].prefix(9), as: UTF8.self)
                    if rest.hasPrefix("u0000") || rest.hasPrefix("U00000000") { has = true }
                    k += 2
                } else {
                    k += 1
                }
            }
            if has {
                let key = line.split(separator: "=", maxSplits: 1).first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
                let name = key.isEmpty || key.hasPrefix("[") ? "" : (section.isEmpty ? key : "\(section).\(key)")
                throw ConfigError(key: name, "line \(i + 1): strings must not contain NUL bytes (\\u0000)")
            }
        }
    }

    /// Reads and parses a file; a missing or unreadable file is a `ConfigError`.
    public static func load(path: String) throws -> DaemonConfig {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError(key: "", "cannot read \(path): \(String(cString: strerror(errno)))")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigError(key: "", "\(path) is not UTF-8 text")
        }
        do { return try parse(text) } catch let e as ConfigError {
            throw ConfigError(key: e.key, e.key.isEmpty ? "\(path): \(e.message)" : e.message + " (in \(path))")
        }
    }
}

/// Typed access to dotted keys with errors that name the key.
private struct Reader {
    let table: TOMLTable

    func section(_ name: String, keys: [String]) throws {
        guard let v = table[name] else { return }
        guard let t = v.table else { throw ConfigError(key: name, "expected a table [\(name)], got a \(v.type)") }
        for k in t.keys where !keys.contains(k) {
            throw ConfigError(key: "\(name).\(k)", "unknown key (known keys in [\(name)]: \(keys.joined(separator: ", ")))")
        }
    }

    func value(_ dotted: String) -> TOMLValueConvertible? {
        let parts = dotted.split(separator: ".").map(String.init)
        guard let t = table[parts[0]]?.table else { return nil }
        return t[parts[1]]
    }

    func string(_ key: String) throws -> String? {
        guard let v = value(key) else { return nil }
        guard let s = v.string else { throw ConfigError(key: key, "expected a string, got \(describe(v))") }
        // A NUL would silently cut the value where C APIs (paths, group and device names) read it.
        guard !s.utf8.contains(0) else { throw ConfigError(key: key, "expected a string without NUL bytes (\\u0000)") }
        return s
    }

    /// One of a closed set, by its spelling; the error lists every accepted spelling.
    func choice<E: CaseIterable & RawRepresentable>(_ key: String, _: E.Type) throws -> E? where E.RawValue == String {
        guard let v = try string(key) else { return nil }
        guard let e = E(rawValue: v) else { throw ConfigError(key: key, "expected \(E.spellings()), got \"\(v)\"") }
        return e
    }

    func int(_ key: String, _ range: ClosedRange<Int>) throws -> Int? {
        guard let v = value(key) else { return nil }
        guard v.type == .int, let i = v.int else {
            throw ConfigError(key: key, "expected an integer in \(range.lowerBound)...\(range.upperBound), got \(describe(v))")
        }
        guard range.contains(i) else {
            throw ConfigError(key: key, "expected an integer in \(range.lowerBound)...\(range.upperBound), got \(i)")
        }
        return i
    }

    func double(_ key: String, _ range: ClosedRange<Double>) throws -> Double? {
        guard let v = value(key) else { return nil }
        let d: Double
        if v.type == .int, let i = v.int { d = Double(i) } else if v.type == .double, let x = v.double { d = x } else {
            throw ConfigError(key: key, "expected a number in \(fmt(range.lowerBound))...\(fmt(range.upperBound)), got \(describe(v))")
        }
        guard d.isFinite, range.contains(d) else {
            throw ConfigError(key: key, "expected a number in \(fmt(range.lowerBound))...\(fmt(range.upperBound)), got \(fmt(d))")
        }
        return d
    }

    /// `"auto"` (`.some(nil)`) or a number in `range` (`.some(x)`); nil when the key is absent.
    func autoOrDouble(_ key: String, _ range: ClosedRange<Double>) throws -> Double?? {
        if let v = value(key), v.type == .string {
            guard v.string == "auto" else {
                throw ConfigError(key: key, "expected \"auto\" or a number in \(fmt(range.lowerBound))...\(fmt(range.upperBound)), got \"\(v.string ?? "")\"")
            }
            return .some(nil)
        }
        return try double(key, range).map { .some($0) }
    }

        func intArray(_ key: String) throws -> [Int]? {
        guard let v = value(key) else { return nil }
        guard let a = v.array else { throw ConfigError(key: key, "expected an array of two integers [left, right], got \(describe(v))") }
        var out: [Int] = []
        for e in a {
            guard e.type == .int, let i = e.int else {
                throw ConfigError(key: key, "expected an array of two integers [left, right], got an element \(describe(e))")
            }
            out.append(i)
        }
        return out
    }

    private func fmt(_ d: Double) -> String {
        d == d.rounded() && abs(d) < 1e15 ? String(Int(d)) : String(d)
    }

    private func describe(_ v: TOMLValueConvertible) -> String {
        switch v.type {
        case .string: return "the string \"\(v.string ?? "")\""
        case .int: return "the integer \(v.int ?? 0)"
        case .double: return "the number \(v.double ?? 0)"
        case .bool: return "the boolean \(v.bool ?? false)"
        case .array: return "an array"
        case .table: return "a table"
        default: return "a \(v.type)"
        }
    }
}
