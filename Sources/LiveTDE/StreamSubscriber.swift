import Foundation

/// A blocking, reconnecting reader of the daemon's socket: connects, delivers each line, and
/// when the daemon goes away (or is not there yet) retries every `retryInterval` seconds.
///
/// Used by `tded watch` and the Swift example client; `tded view` has its own swift-nio relay.
/// `run` returns when the handler returns `false` or `stop()` is called (from any thread;
/// noticed within `pollInterval`).
public final class StreamSubscriber: @unchecked Sendable {
    /// What the handler is told.
    public enum Event: Equatable, Sendable {
        /// Connected to the socket.
        case connected
        /// One line, without its newline.
        case line(String)
        /// The connection ended, or a connect attempt failed (`wasConnected` false).
        case disconnected(wasConnected: Bool)
    }

    /// The socket path.
    public let path: String
    /// Seconds between reconnect attempts.
    public let retryInterval: Double
    /// Longest a blocking read waits before checking `stop()`.
    public let pollInterval: Double
    private let lock = NSLock()
    private var stopped = false

    /// Creates a subscriber for the socket at `path`.
    public init(path: String, retryInterval: Double = 0.5, pollInterval: Double = 0.2) {
        self.path = path
        self.retryInterval = retryInterval
        self.pollInterval = pollInterval
    }

    /// Makes `run` return soon.
    public func stop() { lock.lock(); stopped = true; lock.unlock() }

    private var isStopped: Bool { lock.lock(); defer { lock.unlock() }; return stopped }

    /// Reads until stopped; `handler` returns false to stop.
    public func run(_ handler: (Event) -> Bool) {
        while !isStopped {
            guard let fd = UnixSocket.connect(path) else {
                if !handler(.disconnected(wasConnected: false)) { return }
                sleepInterruptibly(retryInterval)
                continue
            }
            var tv = timeval(tv_sec: Int(pollInterval), tv_usec: Int((pollInterval - Double(Int(pollInterval))) * 1e6))
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            guard handler(.connected) else { close(fd); return }
            let keepGoing = readLines(fd, handler)
            close(fd)
            if !keepGoing { return }
            if !handler(.disconnected(wasConnected: true)) { return }
            sleepInterruptibly(retryInterval)
        }
    }

    /// Returns false when the handler asked to stop (or `stop()` was called).
    private func readLines(_ fd: CInt, _ handler: (Event) -> Bool) -> Bool {
        var pending: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 8192)
        while true {
            if isStopped { return false }
            let n = recv(fd, &chunk, chunk.count, 0)
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) { continue }
            if n <= 0 { return true }
            var start = 0
            for i in 0..<n where chunk[i] == UInt8(ascii: "\n") {
                pending.append(contentsOf: chunk[start..<i])
                start = i + 1
                let line = String(decoding: pending, as: UTF8.self)
                pending.removeAll(keepingCapacity: true)
                if !handler(.line(line)) { return false }
            }
            pending.append(contentsOf: chunk[start..<n])
            if pending.count > 1 << 20 { pending.removeAll() }  // no newline in 1 MiB: not our stream
        }
    }

    private func sleepInterruptibly(_ seconds: Double) {
        let end = Date().addingTimeInterval(seconds)
        while !isStopped && Date() < end { usleep(20_000) }
    }
}
