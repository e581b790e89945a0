import ArgumentParser
import Foundation
import LiveTDE

/// `tded status`: asks a running daemon for its counters over the publish socket.
struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show a running daemon's status (uptime, device, rate, xruns, overruns, clients, engine load).")

    @OptionGroup var daemon: DaemonLocation

    @Flag(name: .long, help: "Print the raw JSON line.")
    var json = false

    func run() throws {
        let sock = daemon.socketPath
        guard let line = UnixSocket.request(sock, "status") else {
            FileHandle.standardError.write("tded status: \(UnixSocket.whyNoAnswer(sock))\n".data(using: .utf8)!)
            throw ExitCode(1)
        }
        if json { print(line); return }
        // A line this build cannot read (another version's daemon) is printed as it came.
        guard let status = try? JSONDecoder().decode(DaemonStatus.self, from: Data(line.utf8)) else {
            print(line); return
        }
        for (k, v) in status.summary { print("\(k.padding(toLength: max(16, k.count), withPad: " ", startingAt: 0)) \(v)") }
    }
}
