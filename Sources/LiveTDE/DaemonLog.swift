// DaemonLog.swift: the daemon's log handler and its run-time log level (SIGHUP changes it).
import Atomics
import Logging

/// The process-wide log level of the daemon's handlers, changeable at run time (SIGHUP applies
/// `log.level` to every component's logger at once).
public enum DaemonLogLevel {
    private static let storage = ManagedAtomic<Int>(Logger.Level.allCases.firstIndex(of: .info)!)
    /// Current level.
    public static var current: Logger.Level {
        get { Logger.Level.allCases[storage.load(ordering: .relaxed)] }
        set { storage.store(Logger.Level.allCases.firstIndex(of: newValue)!, ordering: .relaxed) }
    }
}

/// A stderr log handler whose level is `DaemonLogLevel.current` (shared by all loggers).
public struct DaemonLogHandler: LogHandler {
    private var inner: StreamLogHandler
    /// A handler for `label`.
    public init(label: String) {
        inner = StreamLogHandler.standardError(label: label)
        inner.logLevel = .trace  // filtering happens through `logLevel` below
    }
    /// The shared level.
    public var logLevel: Logger.Level {
        get { DaemonLogLevel.current }
        set { DaemonLogLevel.current = newValue }
    }
    /// Metadata of this handler.
    public var metadata: Logger.Metadata {
        get { inner.metadata }
        set { inner.metadata = newValue }
    }
    /// One metadata value.
    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { inner[metadataKey: key] }
        set { inner[metadataKey: key] = newValue }
    }
    /// Writes the event through the stream handler.
    public func log(event: LogEvent) { inner.log(event: event) }
}
