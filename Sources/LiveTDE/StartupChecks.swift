// StartupChecks.swift: what `tded run` checks before it starts anything, shared with
// `--check-config`, the command-line overrides (re-applied on every SIGHUP), and the rule for
// which changes a reload can apply live.
import Engine
import Foundation
import Logging

/// The `tded run` flags that override the config file. Kept by the daemon so a SIGHUP re-applies
/// them over the re-read file (a reload must not silently drop what the command line chose).
public struct ConfigOverrides: Equatable, Sendable {
    /// `--device`
    public var device: String?
    /// `--socket` (already made absolute, see `init(socket:)`).
    public var socket: String?
    /// `--method`
    public var method: EstimatorMethod?
    /// `--model`
    public var model: String?
    /// `--publish-hz`
    public var publishHz: Double?
    /// `--log-level`
    public var logLevel: String?

    /// No overrides.
    public init() {}

    /// Sets `--socket`, resolving a relative path against the current directory once, at start
    /// (so a reload resolves it the same way).
    public mutating func setSocket(_ s: String, currentDirectory: String = FileManager.default.currentDirectoryPath) {
        socket = s.hasPrefix("/") ? s : currentDirectory + "/" + s
    }

    /// Applies the overrides to `c`; throws a one-line error naming the flag.
    public func apply(to c: inout DaemonConfig) throws {
        if let d = device {
            guard !d.isEmpty else { throw ConfigError(key: "--device", "expected a non-empty ALSA PCM name") }
            c.capture.device = d
        }
        if let s = socket {
            do { try Publisher.checkSocketPath(s) } catch {
                throw ConfigError(key: "--socket", "\(error)")
            }
            c.publish.socket = s
        }
        if let m = method { c.engine.method = m }
        if let m = model { c.engine.model = m }
        if let h = publishHz {
            guard h.isFinite, h >= 0.1 && h <= 1000 else { throw ConfigError(key: "--publish-hz", "expected a number in 0.1...1000, got \(h)") }
            c.publish.rateHz = h
        }
        if let l = logLevel {
            guard let level = Logger.Level(rawValue: l) else { throw ConfigError(key: "--log-level", "expected \(Logger.Level.spellings(quoted: false)), got \"\(l)\"") }
            c.log.level = level
        }
    }
}

extension DaemonConfig {
    /// Keys whose change a running daemon cannot apply (the source keeps delivering audio at
    /// the rate and from the device it opened; the socket stays bound). `capturing`: the source
    /// is ALSA (with `--input` the `[capture]` section is unused).
    public func restartOnlyChanges(from old: DaemonConfig, capturing: Bool) -> [String] {
        var keys: [String] = []
        if capturing {
            let a = old.capture, b = capture
            if a.device != b.device { keys.append("capture.device") }
            if a.rate != b.rate { keys.append("capture.rate") }
            if a.format != b.format { keys.append("capture.format") }
            if a.deviceChannels != b.deviceChannels { keys.append("capture.device_channels") }
            if a.channels != b.channels { keys.append("capture.channels") }
            if a.periodFrames != b.periodFrames { keys.append("capture.period_frames") }
            if a.bufferFrames != b.bufferFrames { keys.append("capture.buffer_frames") }
            if a.ringSeconds != b.ringSeconds { keys.append("capture.ring_seconds") }
            if a.retryMaxSeconds != b.retryMaxSeconds { keys.append("capture.retry_max_seconds") }
        }
        if old.engine.rate != engine.rate { keys.append("engine.rate") }
        if old.publish.socket != publish.socket { keys.append("publish.socket") }
        if old.publish.socketMode != publish.socketMode { keys.append("publish.socket_mode") }
        if old.publish.socketGroup != publish.socketGroup { keys.append("publish.socket_group") }
        return keys
    }
}

extension Daemon {
    /// Everything `run` checks before it creates anything, and all `--check-config` checks:
    /// the socket path and group (unless systemd passes the socket) and the engine (model
    /// included). Returns the pipeline; `note` gets one line when `pooling = "auto"` falls back
    /// to the classical weighting.
    public static func preflight(_ c: DaemonConfig, fileInput: Bool, inheritedSocket: Bool,
                                 note: (String) -> Void = { _ in }) throws -> TDEPipeline {
        if !inheritedSocket {
            do { try Publisher.checkSocketPath(c.publish.socket) } catch {
                throw ConfigError(key: "publish.socket", "\(error)".replacingOccurrences(of: "publish.socket: ", with: ""))
            }
            if !c.publish.socketGroup.isEmpty && Publisher.groupID(c.publish.socketGroup) == nil {
                throw ConfigError(key: "publish.socket_group", "no such group \"\(c.publish.socketGroup)\"")
            }
            let dir = (c.publish.socket as NSString).deletingLastPathComponent
            var isDir: ObjCBool = false
            if !dir.isEmpty && !(FileManager.default.fileExists(atPath: dir, isDirectory: &isDir) && isDir.boolValue) {
                throw ConfigError(key: "publish.socket", "directory \(dir) does not exist")
            }
        }
        do {
            return try makePipeline(c.engine, rateHz: c.publish.rateHz, note: note)
        } catch let e as ConfigError {
            throw e
        } catch {
            throw ConfigError(key: "engine", "\(error)")
        }
    }
}
