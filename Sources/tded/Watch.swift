import ArgumentParser
import Foundation
import LiveTDE
import LiveView

/// `tded watch`: the daemon's stream as one gauge line for a terminal (SSH sessions).
struct Watch: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "watch",
        abstract: "Show a running daemon's azimuth as a gauge line redrawn in place (plain lines when not a terminal).",
        discussion: """
        L [------|---#-------] R  +30.0 deg  conf 0.91   -28.7 dBFS  holding
        The bar runs from the LEFT mic (+90) to the RIGHT mic (-90); tracked sources \
        (engine.max_sources) are marked by their id (their numbers are in the plain lines). When stdout is not a \
        terminal, one plain line per update is printed instead. Reconnects when the daemon \
        restarts; Ctrl-C to quit.
        """)

    @OptionGroup var daemon: DaemonLocation

    @Flag(name: .long, help: "Plain lines even on a terminal.")
    var plain = false

    @Option(name: .long, help: "Exit after this many updates (0 = run until interrupted).")
    var count: Int = 0

    func run() throws {
        signal(SIGPIPE, SIG_IGN)
        let path = daemon.socketPath
        let tty = !plain && isatty(STDOUT_FILENO) == 1
        let sub = StreamSubscriber(path: path)
        var shown = 0
        var waitingShown = false
        func out(_ s: String) { FileHandle.standardOutput.write(s.data(using: .utf8)!) }
        sub.run { ev in
            switch ev {
            case .connected:
                waitingShown = false
            case .disconnected:
                if !waitingShown {
                    waitingShown = true
                    out(tty ? Gauge.redraw("waiting for the daemon on \(path)...") : "waiting for the daemon on \(path)\n")
                }
            case .line(let text):
                switch StreamLine.parse(text) {
                case .success(let l):
                    out(tty ? Gauge.redraw(Gauge.line(l)) : Gauge.plainLine(l) + "\n")
                    shown += 1
                    if count > 0 && shown >= count { return false }
                case .failure(.unknownVersion(let v)):
                    FileHandle.standardError.write("\ntded watch: the daemon speaks schema v=\(v); this tded knows v=\(StreamLine.schemaVersion)\n".data(using: .utf8)!)
                    return false
                case .failure:
                    break
                }
            }
            return true
        }
        if tty { out("\n") }
    }
}
