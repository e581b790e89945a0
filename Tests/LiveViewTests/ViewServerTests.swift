import Foundation
import LiveTDE
import Logging
import XCTest
@testable import LiveView

/// `ViewServer` over real sockets, with the daemon's own `Publisher` standing in for the
/// daemon: the page and the event stream, relaying, status, and the daemon going and coming back.
final class ViewServerTests: XCTestCase {
    /// A blocking TCP client to 127.0.0.1:port that accumulates what it reads.
    final class TCP {
        let fd: CInt
        var text = ""
        init(port: Int) throws {
            fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var a = sockaddr_in()
            a.sin_family = sa_family_t(AF_INET)
            a.sin_port = in_port_t(UInt16(port).bigEndian)
            a.sin_addr.s_addr = inet_addr("127.0.0.1")
            let ok = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 } }
            guard ok else { throw NSError(domain: "TCP", code: Int(errno)) }
            var tv = timeval(tv_sec: 0, tv_usec: 100_000)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        }
        deinit { close(fd) }
        func send(_ s: String) { let b = Array(s.utf8); _ = Glibc.send(fd, b, b.count, Int32(MSG_NOSIGNAL)) }
        /// Reads until `cond(text)` or `timeout`; returns whether it held.
        func read(until cond: (String) -> Bool, timeout: Double = 10) -> Bool {
            let end = Date().addingTimeInterval(timeout)
            var buf = [UInt8](repeating: 0, count: 65536)
            while !cond(text) && Date() < end {
                let n = recv(fd, &buf, buf.count, 0)
                if n > 0 { text += String(decoding: buf[0..<n], as: UTF8.self) } else if n == 0 { break }
            }
            return cond(text)
        }
    }

    func get(_ port: Int, _ request: String) throws -> String {
        let c = try TCP(port: port)
        c.send(request)
        _ = c.read(until: { _ in false }, timeout: 2)  // until the server closes
        return c.text
    }

    func testLoopbackHostNames() {
        for h in ["localhost", "localhost:8080", "127.0.0.1", "127.0.0.1:1", "127.1.2.3:80", "[::1]", "[::1]:8080", "LOCALHOST"] {
            XCTAssertTrue(ViewServer.isLoopbackHost(h), h)
        }
        for h in [nil, "", "evil.example", "127.0.0.1.evil.example", "10.0.0.1:80", "[::2]:80", "127.0.0:80", "localhost.evil:80"] {
            XCTAssertFalse(ViewServer.isLoopbackHost(h), h ?? "nil")
        }
    }

    func publisher(_ path: String) throws -> Publisher {
        var s = DaemonConfig().publish
        s.socket = path
        let p = Publisher(settings: s, logger: Logger(label: "test")) { "{\"type\":\"status\",\"v\":1,\"xruns\":0,\"clients\":7}" }
        try p.start()
        return p
    }

    func testServesPageAndRelaysStreamAcrossDaemonRestart() throws {
        let dir = "/tmp/tded-view-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let sock = dir + "/d.sock"
        var daemon = try publisher(sock)
        let server = ViewServer(socketPath: sock, listen: ListenAddress(host: "127.0.0.1", port: 0),
                                retryInterval: .milliseconds(100), statusInterval: .milliseconds(200))
        try server.start()
        defer { server.stop() }
        let port = try XCTUnwrap(server.boundPort)

        let page = try get(port, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        XCTAssertTrue(page.hasPrefix("HTTP/1.1 200 OK"), String(page.prefix(100)))
        XCTAssertTrue(page.lowercased().contains("content-type: text/html"))
        XCTAssertTrue(page.lowercased().contains("content-security-policy: default-src 'none'"))
        XCTAssertTrue(page.contains("<canvas id=\"dial\""))
        XCTAssertTrue(try get(port, "GET /nope HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").hasPrefix("HTTP/1.1 404"))
        XCTAssertTrue(try get(port, "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-length: 0\r\n\r\n").hasPrefix("HTTP/1.1 405"))

        // Loopback only: another Host (DNS rebinding) is refused.
        XCTAssertTrue(try get(port, "GET / HTTP/1.1\r\nHost: evil.example:\(port)\r\n\r\n").hasPrefix("HTTP/1.1 403"))
        XCTAssertTrue(try get(port, "GET /events HTTP/1.1\r\n\r\n").hasPrefix("HTTP/1.1 403"))
        XCTAssertTrue(try get(port, "GET /healthz HTTP/1.1\r\nHost: localhost:\(port)\r\n\r\n").hasPrefix("HTTP/1.1 200"))

        let es = try TCP(port: port)
        es.send("GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n")
        XCTAssertTrue(es.read(until: { $0.contains("event: daemon\ndata: {\"connected\":true") }), es.text)
        XCTAssertTrue(es.text.lowercased().contains("content-type: text/event-stream"))
        let line = "{\"v\":1,\"t\":1.000,\"seq\":1}"
        XCTAssertTrue(es.read(until: { daemon.publish(line); return $0.contains("data: \(line)\n\n") }), es.text)
        XCTAssertTrue(es.read(until: { $0.contains("event: status\ndata: {\"type\":\"status\"") }), es.text)

        // The daemon goes: the page is told; it comes back: relaying resumes by itself.
        daemon.stop()
        XCTAssertTrue(es.read(until: { $0.contains("data: {\"connected\":false") }), es.text)
        es.text = ""
        daemon = try publisher(sock)
        defer { daemon.stop() }
        XCTAssertTrue(es.read(until: { $0.contains("data: {\"connected\":true") }), es.text)
        let line2 = "{\"v\":1,\"t\":0.050,\"seq\":1,\"again\":true}"
        XCTAssertTrue(es.read(until: { daemon.publish(line2); return $0.contains("data: \(line2)\n\n") }), es.text)
    }
}
