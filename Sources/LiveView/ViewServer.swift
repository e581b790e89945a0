import Foundation
import LiveTDE
import NIOCore
import NIOHTTP1
import NIOPosix

/// `tded view`'s HTTP server: serves the embedded page (`ViewPage.html`) at `/` and relays the
/// daemon's lines to every open page as Server-Sent Events at `/events`.
///
/// It is a client of the daemon's Unix socket (`DaemonRelay`), never part of the daemon, so
/// the daemon itself stays AF_UNIX-only. Events on `/events`:
/// - unnamed (`message`): one daemon line, verbatim;
/// - `daemon`: `{"connected":true|false,"socket":"PATH"}` on every change and on connect;
/// - `status`: the daemon's status reply, about once a second while connected.
///
/// A page that cannot keep up (its TCP buffer above the high-water mark) skips lines, as a
/// slow socket client does; lines are never queued without bound.
public final class ViewServer: @unchecked Sendable {
    /// Address the server listens on.
    public let listen: ListenAddress
    /// The daemon's socket.
    public let socketPath: String
    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private let loop: EventLoop
    private let relay: DaemonRelay
    private var server: Channel?
    // Event-loop confined:
    private var pages: [ObjectIdentifier: Channel] = [:]
    private var daemonConnected = false
    private var lastStatus: String?
    /// Lines not sent to some page because it was not writable (one per page per line).
    public private(set) var skippedLines = 0

    /// Creates a server for `socketPath`, to listen on `listen` once started.
    public init(socketPath: String, listen: ListenAddress,
                retryInterval: TimeAmount = .milliseconds(500), statusInterval: TimeAmount = .seconds(1)) {
        self.socketPath = socketPath
        self.listen = listen
        loop = group.next()
        relay = DaemonRelay(path: socketPath, loop: loop, retryInterval: retryInterval, statusInterval: statusInterval)
    }

    /// The TCP port actually bound (differs from `listen.port` when that was 0).
    public var boundPort: Int? { server?.localAddress?.port }

    /// Binds the HTTP socket and starts relaying. Throws when the address cannot be bound.
    public func start() throws {
        relay.onLine = { [unowned self] line in self.broadcast(SSE.event(data: line)) }
        relay.onConnected = { [unowned self] up in
            self.daemonConnected = up
            if !up { self.lastStatus = nil }
            self.broadcast(self.daemonEvent())
        }
        relay.onStatus = { [unowned self] line in
            self.lastStatus = line
            self.broadcast(SSE.event("status", data: line))
        }
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 64)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(ChannelOptions.writeBufferWaterMark, value: .init(low: 16 * 1024, high: 64 * 1024))
            .childChannelInitializer { [unowned self] ch in
                ch.eventLoop.makeCompletedFuture {
                    try ch.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try ch.pipeline.syncOperations.addHandler(HTTPHandler(server: self))
                }
            }
        do {
            server = try bootstrap.bind(host: listen.host, port: listen.port).wait()
        } catch {
            try? group.syncShutdownGracefully()
            throw ViewError("cannot listen on \(listen): \(error)")
        }
        relay.start()
    }

    /// Stops relaying, closes every page and the listening socket.
    public func stop() {
        relay.stop()
        try? server?.close().wait()
        try? loop.submit {
            for (_, c) in self.pages { c.close(promise: nil) }
            self.pages.removeAll()
        }.wait()
        try? group.syncShutdownGracefully()
    }

    /// True when a `Host` header names this machine's loopback (`localhost`, `127.x.y.z`, `[::1]`),
    /// with or without a port.
    public static func isLoopbackHost(_ host: String?) -> Bool {
        guard var h = host?.lowercased(), !h.isEmpty else { return false }
        if h.hasPrefix("[") {
            guard let close = h.firstIndex(of: "]") else { return false }
            return h[h.index(after: h.startIndex)..<close] == "::1"
        }
        if let colon = h.lastIndex(of: ":") { h = String(h[..<colon]) }
        if h == "localhost" { return true }
        let parts = h.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts[0] == "127" && parts.allSatisfy { UInt8($0) != nil }
    }

    /// Blocks until the listening socket closes.
    public func wait() throws { try server?.closeFuture.wait() }

    private func daemonEvent() -> String {
        SSE.event("daemon", data: "{\"connected\":\(daemonConnected),\"socket\":\(JSONLine.quoted(socketPath))}")
    }

    private func broadcast(_ text: String) {
        guard !pages.isEmpty else { return }
        var buf = ByteBufferAllocator().buffer(capacity: text.utf8.count)
        buf.writeString(text)
        for (_, ch) in pages {
            guard ch.isWritable else { skippedLines += 1; continue }
            ch.writeAndFlush(HTTPServerResponsePart.body(.byteBuffer(buf)), promise: nil)
        }
    }

    fileprivate func addPage(_ ch: Channel) {
        pages[ObjectIdentifier(ch)] = ch
        var text = SSE.retry(milliseconds: 1000) + daemonEvent()
        if let s = lastStatus { text += SSE.event("status", data: s) }
        var buf = ch.allocator.buffer(capacity: text.utf8.count)
        buf.writeString(text)
        ch.writeAndFlush(HTTPServerResponsePart.body(.byteBuffer(buf)), promise: nil)
    }

    fileprivate func removePage(_ ch: Channel) { pages.removeValue(forKey: ObjectIdentifier(ch)) }
}

/// A viewer start-up failure, one line.
public struct ViewError: Error, CustomStringConvertible {
    /// The message.
    public let description: String
    init(_ m: String) { description = m }
}

/// One HTTP connection: `GET /` (the page), `GET /events` (the event stream), `GET /healthz`.
private final class HTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    private let server: ViewServer
    private var head: HTTPRequestHead?
    private var streaming = false

    init(server: ViewServer) { self.server = server }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h): head = h
        case .body: break
        case .end:
            guard let h = head, !streaming else { return }
            head = nil
            respond(context, h)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if streaming { server.removePage(context.channel) }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    private func respond(_ context: ChannelHandlerContext, _ h: HTTPRequestHead) {
        guard h.method == .GET || h.method == .HEAD else {
            return send(context, h, .methodNotAllowed, "text/plain; charset=utf-8", "GET only\n")
        }
        // Bound to loopback: answer only requests addressed to loopback, so a web page from
        // elsewhere cannot read the stream through DNS rebinding (a name resolving to 127.0.0.1).
        if server.listen.isLoopback, !ViewServer.isLoopbackHost(h.headers.first(name: "host")) {
            return send(context, h, .forbidden, "text/plain; charset=utf-8", "Host must be localhost or a loopback address\n")
        }
        let path = h.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? "/"
        switch path {
        case "/", "/index.html":
            send(context, h, .ok, "text/html; charset=utf-8", ViewPage.html)
        case "/healthz":
            send(context, h, .ok, "text/plain; charset=utf-8", "ok\n")
        case "/events" where h.method == .GET:
            streaming = true
            var headers = HTTPHeaders()
            headers.add(name: "content-type", value: "text/event-stream; charset=utf-8")
            headers.add(name: "cache-control", value: "no-store")
            headers.add(name: "x-accel-buffering", value: "no")
            context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: h.version, status: .ok, headers: headers))), promise: nil)
            server.addPage(context.channel)
        default:
            send(context, h, .notFound, "text/plain; charset=utf-8", "not found\n")
        }
    }

    private func send(_ context: ChannelHandlerContext, _ req: HTTPRequestHead, _ status: HTTPResponseStatus,
                      _ type: String, _ body: String) {
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: type)
        headers.add(name: "content-length", value: String(body.utf8.count))
        headers.add(name: "cache-control", value: "no-store")
        headers.add(name: "connection", value: "close")
        // The page loads nothing from anywhere but this server.
        headers.add(name: "content-security-policy",
                    value: "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:")
        headers.add(name: "x-content-type-options", value: "nosniff")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: req.version, status: status, headers: headers))), promise: nil)
        if req.method != .HEAD {
            var buf = context.channel.allocator.buffer(capacity: body.utf8.count)
            buf.writeString(body)
            context.write(wrapOutboundOut(.body(.byteBuffer(buf))), promise: nil)
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in context.close(promise: nil) }
    }
}
