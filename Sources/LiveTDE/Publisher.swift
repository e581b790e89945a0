import Atomics
import Foundation
import Logging
import NIOCore
import NIOPosix

/// Counters the publisher keeps; readable from any thread.
public final class PublisherStats: @unchecked Sendable {
    /// Clients connected now.
    public let clients = ManagedAtomic<Int>(0)
    /// Clients ever accepted.
    public let accepted = ManagedAtomic<Int>(0)
    /// Clients disconnected because they fell too far behind.
    public let droppedClients = ManagedAtomic<Int>(0)
    /// Lines not sent to some client because its queue was full (one per client per line).
    public let skippedLines = ManagedAtomic<Int>(0)
    /// Lines handed to the publisher.
    public let published = ManagedAtomic<Int>(0)
    /// Creates zeroed counters.
    public init() {}
}

/// Serves one JSON line per update to any number of clients on a Unix stream socket.
///
/// - `publish(_:)` may be called from any thread and never blocks: the line is handed to the
///   publisher's event loop, which writes it to each client whose queue of unwritten lines is
///   below `clientQueueLines`; for a client at its limit the line is skipped and counted, and a
///   client that skipped `maxSkippedLines` in a row is disconnected (counted in `droppedClients`).
/// - A client may send `status\n`; it then receives one status JSON line (from `statusLine`) and
///   the connection is closed. Anything else a client sends is ignored.
/// - Clients that vanish (EOF, EPIPE, ECONNRESET) are removed. SIGPIPE must be ignored by the
///   process (the daemon does so); NIO reports broken pipes as errors, handled per client.
public final class Publisher: @unchecked Sendable {
    /// Counters.
    public let stats = PublisherStats()
    private let group: MultiThreadedEventLoopGroup
    private let loop: EventLoop
    private let logger: Logger
    private var settings: DaemonConfig.Publish
    private var serverChannel: Channel?
    private var boundPath: String?
    private var ownsSocketFile = false
    private let stopLock = NSLock()
    private var stopped = false
    // Event-loop confined:
    private var clients: [ObjectIdentifier: ClientState] = [:]
    private let statusLine: @Sendable () -> String

    final class ClientState {
        let channel: Channel
        var pending = 0
        var skippedInRow = 0
        init(channel: Channel) { self.channel = channel }
    }

    /// Creates a publisher; `statusLine` is asked for the reply to a `status` request.
    public init(settings: DaemonConfig.Publish, logger: Logger, statusLine: @escaping @Sendable () -> String) {
        self.settings = settings
        self.logger = logger
        self.statusLine = statusLine
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        loop = group.next()
    }

    /// The socket path served (nil until started, or when serving an inherited descriptor).
    public var path: String? { boundPath }

    /// Starts serving: on `inheritedFD` when systemd passed a listening socket, else binds
    /// `settings.socket` (a stale socket file nobody listens on is replaced; a live one is an
    /// error), then applies `socket_mode` and `socket_group`.
    public func start(inheritedFD: CInt? = nil) throws {
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 256)
            .childChannelOption(ChannelOptions.writeBufferWaterMark,
                                value: .init(low: 4096, high: 16384))
            .childChannelInitializer { [weak self] channel in
                guard let self else { return channel.eventLoop.makeSucceededVoidFuture() }
                return channel.pipeline.addHandler(ClientHandler(publisher: self))
            }
        if let fd = inheritedFD {
            serverChannel = try bootstrap.withBoundSocket(fd).wait()
            logger.info("publishing on socket inherited from systemd (fd \(fd))")
            return
        }
        let path = settings.socket
        // Validate everything that can fail before anything is created, so a failed start
        // leaves no socket file behind.
        try Publisher.checkSocketPath(path)
        var gid: gid_t? = nil
        if !settings.socketGroup.isEmpty {
            guard let g = Publisher.groupID(settings.socketGroup) else {
                throw PublisherError("publish.socket_group: no such group \"\(settings.socketGroup)\"")
            }
            gid = g
        }
        try Publisher.removeStaleSocket(path)
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty && !FileManager.default.fileExists(atPath: dir) {
            throw PublisherError("socket directory \(dir) does not exist (publish.socket = \"\(path)\")")
        }
        // The socket file is created owner-only (umask 077 around bind: nothing else in this
        // process creates files during start-up), so no other user can connect before its
        // group and mode are set below; only then is it opened up to `socket_mode`.
        let oldMask = umask(0o077)
        do {
            serverChannel = try bootstrap.bind(unixDomainSocketPath: path).wait()
        } catch {
            umask(oldMask)
            throw PublisherError("cannot listen on \(path): \(error)")
        }
        umask(oldMask)
        boundPath = path
        ownsSocketFile = true
        Publisher.afterBindHook?(path)
        if let gid, chown(path, uid_t.max, gid) != 0 {
            logger.warning("chown \(path) to group \(settings.socketGroup) failed: \(String(cString: strerror(errno)))")
        }
        if chmod(path, mode_t(settings.socketMode)) != 0 {
            logger.warning("chmod \(path) failed: \(String(cString: strerror(errno)))")
        }
        logger.info("publishing on \(path) (mode \(String(settings.socketMode, radix: 8)))")
    }

    /// Test hook: called right after the socket is bound, before its group and mode are set.
    nonisolated(unsafe) static var afterBindHook: ((String) -> Void)?

    /// The longest socket path `bind` accepts, in bytes (swift-nio's limit: 103 + NUL).
    public static let maxSocketPathBytes = 103

    /// Throws a one-line error for a socket path `bind` would reject or mangle.
    public static func checkSocketPath(_ path: String) throws {
        guard !path.utf8.contains(0) else {
            throw PublisherError("publish.socket: the path contains a NUL byte")
        }
        guard path.hasPrefix("/") else {
            throw PublisherError("publish.socket: expected an absolute path, got \"\(path)\"")
        }
        guard path.utf8.count <= maxSocketPathBytes else {
            throw PublisherError("publish.socket: the path is \(path.utf8.count) bytes, at most \(maxSocketPathBytes) fit in a Unix socket address")
        }
    }

    /// The id of group `name` (nil when no such group).
    public static func groupID(_ name: String) -> gid_t? {
        guard !name.utf8.contains(0), let gr = getgrnam(name) else { return nil }
        return gr.pointee.gr_gid
    }

    /// Removes `path` if it is a socket file that nobody accepts connections on. Throws when a
    /// live server is listening there or the path is not a socket.
    static func removeStaleSocket(_ path: String) throws {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        guard (st.st_mode & S_IFMT) == S_IFSOCK else {
            throw PublisherError("\(path) exists and is not a socket; refusing to replace it")
        }
        if UnixSocket.canConnect(path) {
            throw PublisherError("another process is already serving \(path)")
        }
        unlink(path)
    }

    /// Applies new limits (rate is the caller's business). The socket itself is not rebound.
    public func update(settings new: DaemonConfig.Publish) {
        loop.execute { self.settings.clientQueueLines = new.clientQueueLines
                       self.settings.maxSkippedLines = new.maxSkippedLines }
    }

    /// Sends `line` (without newline) to every client. Any thread; never blocks.
    public func publish(_ line: String) {
        stats.published.wrappingIncrement(ordering: .relaxed)
        loop.execute { self.broadcast(line) }
    }

    private func broadcast(_ line: String) {
        guard !clients.isEmpty else { return }
        var buf = ByteBufferAllocator().buffer(capacity: line.utf8.count + 1)
        buf.writeString(line)
        buf.writeInteger(UInt8(ascii: "\n"))
        let limit = settings.clientQueueLines
        let maxSkip = settings.maxSkippedLines
        for (_, c) in clients {
            if c.pending >= limit || !c.channel.isWritable {
                stats.skippedLines.wrappingIncrement(ordering: .relaxed)
                c.skippedInRow += 1
                if c.skippedInRow >= maxSkip {
                    stats.droppedClients.wrappingIncrement(ordering: .relaxed)
                    logger.notice("disconnecting a client that skipped \(c.skippedInRow) lines in a row")
                    remove(c.channel)
                    c.channel.close(promise: nil)
                }
                continue
            }
            c.skippedInRow = 0
            c.pending += 1
            let p = loop.makePromise(of: Void.self)
            p.futureResult.whenComplete { _ in c.pending -= 1 }
            c.channel.writeAndFlush(buf, promise: p)
        }
    }

    fileprivate func add(_ ch: Channel) {
        clients[ObjectIdentifier(ch)] = ClientState(channel: ch)
        stats.clients.store(clients.count, ordering: .relaxed)
        stats.accepted.wrappingIncrement(ordering: .relaxed)
    }

    fileprivate func remove(_ ch: Channel) {
        if clients.removeValue(forKey: ObjectIdentifier(ch)) != nil {
            stats.clients.store(clients.count, ordering: .relaxed)
        }
    }

    fileprivate func statusRequested(_ ch: Channel) {
        remove(ch)
        var buf = ch.allocator.buffer(capacity: 512)
        buf.writeString(statusLine())
        buf.writeInteger(UInt8(ascii: "\n"))
        ch.writeAndFlush(buf).whenComplete { _ in ch.close(promise: nil) }
    }

    /// Closes all clients and the listening socket, and removes the socket file it created.
    /// Idempotent: a second call (e.g. after a failed `start`) returns at once.
    public func stop() {
        stopLock.lock()
        defer { stopLock.unlock() }
        guard !stopped else { return }
        stopped = true
        if let s = serverChannel {
            try? s.close().wait()
            serverChannel = nil
        }
        try? loop.submit {
            for (_, c) in self.clients { c.channel.close(promise: nil) }
            self.clients.removeAll()
        }.wait()
        if ownsSocketFile, let p = boundPath { unlink(p); ownsSocketFile = false }
        try? group.syncShutdownGracefully()
    }
}

/// A publisher start-up failure, one line.
public struct PublisherError: Error, CustomStringConvertible {
    /// The message.
    public let description: String
    init(_ m: String) { description = m }
}

private final class ClientHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    private let publisher: Publisher
    private var request: [UInt8] = []
    init(publisher: Publisher) { self.publisher = publisher }

    func channelActive(context: ChannelHandlerContext) {
        publisher.add(context.channel)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        publisher.remove(context.channel)
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buf = unwrapInboundIn(data)
        for byte in buf.readableBytesView {
            if byte == UInt8(ascii: "\n") {
                let cmd = String(decoding: request, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                request.removeAll(keepingCapacity: true)
                if cmd == "status" { publisher.statusRequested(context.channel); return }
            } else if request.count < 64 {
                request.append(byte)
            }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // EPIPE / ECONNRESET from a vanished client: just drop it.
        publisher.remove(context.channel)
        context.close(promise: nil)
    }
}

/// Small blocking Unix-socket helpers (used for the stale-socket check and by `tded status`).
public enum UnixSocket {
    /// Connects to `path`; returns the descriptor or nil.
    public static func connect(_ path: String) -> CInt? {
        connectResult(path).fd
    }

    /// Connects to `path`; returns the descriptor or the `errno` of the failure.
    public static func connectResult(_ path: String) -> (fd: CInt?, errno: Int32) {
        func fail(_ e: Int32) -> (fd: CInt?, errno: Int32) { (nil, e) }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return fail(errno) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { close(fd); return fail(ENAMETOOLONG) }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
            raw[bytes.count] = 0
        }
        let ok = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0
            }
        }
        if !ok { let e = errno; close(fd); return fail(e) }
        return (fd, 0)
    }

    /// Why nobody answered on `path`, in words (for `tded status`).
    public static func whyNoAnswer(_ path: String) -> String {
        let r = connectResult(path)
        if let fd = r.fd {
            close(fd)
            return "the daemon on \(path) accepted the connection but sent no status reply"
        }
        switch r.errno {
        case EACCES, EPERM: return "permission denied connecting to \(path) (is this user in the socket's group?)"
        case ENOENT: return "no daemon answering on \(path) (no such socket file)"
        case ECONNREFUSED: return "no daemon answering on \(path) (connection refused: a stale socket file)"
        default: return "no daemon answering on \(path): \(String(cString: strerror(r.errno)))"
        }
    }

    /// True when something accepts connections on `path`.
    public static func canConnect(_ path: String) -> Bool {
        guard let fd = connect(path) else { return false }
        close(fd)
        return true
    }

    /// Sends `request` and returns the first line of the reply (nil on failure or timeout).
    public static func request(_ path: String, _ request: String, timeoutSeconds: Int = 3) -> String? {
        guard let fd = connect(path) else { return nil }
        defer { close(fd) }
        var tv = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let data = Array((request + "\n").utf8)
        guard send(fd, data, data.count, Int32(MSG_NOSIGNAL)) == data.count else { return nil }
        var reply: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = recv(fd, &chunk, chunk.count, 0)
            if n <= 0 { break }
            reply.append(contentsOf: chunk[0..<n])
            // Skip stream lines that raced ahead of the status reply (one recv may hold several).
            while let i = reply.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: reply[0..<i], as: UTF8.self)
                if line.contains("\"type\":\"status\"") { return line }
                reply.removeSubrange(0...i)
            }
        }
        return nil
    }
}
