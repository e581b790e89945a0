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
        guard let obj = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
            print(line); return
        }
        let order = ["uptime_s", "source", "device", "state", "rate", "device_rate", "resample_latency_ms", "method", "publish_hz",
                     "frames", "xruns", "device_lost", "overruns", "dropped_frames", "clients",
                     "clients_total", "dropped_clients", "skipped_lines", "published", "audio_s",
                     "engine_cpu_s", "engine_load", "process_cpu_s"]
        for k in order { if let v = obj[k] { print("\(k.padding(toLength: max(16, k.count), withPad: " ", startingAt: 0)) \(v)") } }
    }
}
