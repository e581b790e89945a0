import NIOCore
import NIOPosix

/// The viewer's client side of the daemon's Unix socket (swift-nio): keeps one stream
/// connection open, reconnecting every `retryInterval` while the daemon is away, and asks for a
/// status line every `statusInterval` on a second, short-lived connection (as `tded status` does).
///
/// All callbacks run on `loop`. Start with `start()`; `stop()` closes everything.
final class DaemonRelay {
    /// Called for each stream line (without newline).
    var onLine: (String) -> Void = { _ in }
    /// Called when the stream connection comes up (true) or goes down / fails (false), on changes only.
    var onConnected: (Bool) -> Void = { _ in }
    /// Called with each status reply.
    var onStatus: (String) -> Void = { _ in }

    let path: String
    let loop: EventLoop
    let retryInterval: TimeAmount
    let statusInterval: TimeAmount
    private var stream: Channel?
    private var connected = false
    private var stopped = false
    private var statusTask: RepeatedTask?

    init(path: String, loop: EventLoop, retryInterval: TimeAmount = .milliseconds(500),
         statusInterval: TimeAmount = .seconds(1)) {
        self.path = path; self.loop = loop
        self.retryInterval = retryInterval; self.statusInterval = statusInterval
    }

    func start() {
        loop.execute {
            self.connect()
            self.statusTask = self.loop.scheduleRepeatedTask(initialDelay: .milliseconds(200), delay: self.statusInterval) { _ in
                self.pollStatus()
            }
        }
    }

    func stop() {
        loop.execute {
            self.stopped = true
            self.statusTask?.cancel()
            self.stream?.close(promise: nil)
        }
    }

    private func setConnected(_ c: Bool) {
        guard c != connected else { return }
        connected = c
        onConnected(c)
    }

    private func connect() {
        guard !stopped else { return }
        ClientBootstrap(group: loop)
            .channelInitializer { ch in
                ch.eventLoop.makeCompletedFuture {
                    try ch.pipeline.syncOperations.addHandler(LineHandler(
                        onLine: { [weak self] in self?.onLine($0) },
                        onClose: { [weak self] in self?.streamClosed() }))
                }
            }
            .connect(unixDomainSocketPath: path)
            .whenComplete { result in
                switch result {
                case .success(let ch):
                    if self.stopped { ch.close(promise: nil); return }
                    self.stream = ch
                    self.setConnected(true)
                case .failure:
                    self.setConnected(false)
                    self.scheduleReconnect()
                }
            }
    }

    private func streamClosed() {
        stream = nil
        setConnected(false)
        scheduleReconnect()
    }

    private func scheduleReconnect() {
        guard !stopped else { return }
        loop.scheduleTask(in: retryInterval) { self.connect() }
    }

    private func pollStatus() {
        guard connected, !stopped else { return }
        ClientBootstrap(group: loop)
            .channelInitializer { ch in
                ch.eventLoop.makeCompletedFuture {
                    try ch.pipeline.syncOperations.addHandler(LineHandler(
                        onLine: { [weak self, weak ch] line in
                            // Stream lines may race ahead of the reply; keep only the status.
                            guard line.contains("\"type\":\"status\"") else { return }
                            self?.onStatus(line)
                            ch?.close(promise: nil)
                        },
                        onClose: {}))
                }
            }
            .connect(unixDomainSocketPath: path)
            .whenSuccess { ch in
                var buf = ch.allocator.buffer(capacity: 8)
                buf.writeString("status\n")
                ch.writeAndFlush(buf, promise: nil)
                // Never keep a status connection around for long.
                self.loop.scheduleTask(in: .seconds(3)) { ch.close(promise: nil) }
            }
    }
}

/// Splits a byte stream into newline-terminated lines (lines longer than 64 KiB are dropped).
final class LineHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    private var pending: [UInt8] = []
    private var overlong = false
    private let onLine: (String) -> Void
    private let onClose: () -> Void

    init(onLine: @escaping (String) -> Void, onClose: @escaping () -> Void) {
        self.onLine = onLine; self.onClose = onClose
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buf = unwrapInboundIn(data)
        for b in buf.readableBytesView {
            if b == UInt8(ascii: "\n") {
                if !overlong { onLine(String(decoding: pending, as: UTF8.self)) }
                pending.removeAll(keepingCapacity: true)
                overlong = false
            } else if pending.count < 65536 {
                pending.append(b)
            } else {
                overlong = true
            }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        onClose()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}
