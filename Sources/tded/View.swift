import ArgumentParser
import Foundation
import LiveTDE
import LiveView

/// `tded view`: a small HTTP server that shows the daemon's stream in a browser.
struct View: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "view",
        abstract: "Serve a live browser view of a running daemon (dial, 30 s strip, level, flags, counters).",
        discussion: """
        A separate process: it reads the daemon's Unix socket as a client and serves one \
        self-contained page (no internet needed) plus a Server-Sent Events stream. It keeps \
        running when the daemon restarts and reconnects by itself; the page shows that it is \
        waiting. Listens on 127.0.0.1 only unless --listen says otherwise.
        """)

    @OptionGroup var daemon: DaemonLocation

    @Option(name: .long, help: "HOST:PORT to serve on ([::1]:PORT for IPv6; port 0 = any free port).")
    var listen: String = "127.0.0.1:8080"

    func validate() throws {
        if ListenAddress(listen) == nil { throw ValidationError("--listen: expected HOST:PORT, got \"\(listen)\"") }
    }

    func run() throws {
        signal(SIGPIPE, SIG_IGN)
        let addr = ListenAddress(listen)!
        let path = daemon.socketPath
        let server = ViewServer(socketPath: path, listen: addr)
        do { try server.start() } catch {
            FileHandle.standardError.write("tded view: \(error)\n".data(using: .utf8)!)
            throw ExitCode(1)
        }
        let shown = ListenAddress(host: addr.host, port: server.boundPort ?? addr.port)
        if !addr.isLoopback {
            FileHandle.standardError.write("tded view: warning: serving on \(shown), reachable beyond this machine\n".data(using: .utf8)!)
        }
        print("tded view: serving http://\(shown)/ (daemon socket \(path))")
        fflush(stdout)
        // SIGTERM / SIGINT: close pages and the listening socket, exit 0.
        let sigQueue = DispatchQueue(label: "tded-view-signals")
        var sources: [DispatchSourceSignal] = []
        for sig in [SIGTERM, SIGINT] {
            signal(sig, SIG_IGN)
            let s = DispatchSource.makeSignalSource(signal: sig, queue: sigQueue)
            s.setEventHandler { server.stop() }
            s.resume()
            sources.append(s)
        }
        try? server.wait()
        _ = sources
    }
}
