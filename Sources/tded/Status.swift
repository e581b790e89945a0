import ArgumentParser
import Foundation
import LiveTDE

/// `tded status`: asks a running daemon for its counters over the publish socket.
struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show a running daemon's status (uptime, device, rate, xruns, overruns, clients, engine load).")

    @Option(name: .long, help: "Daemon socket (default: publish.socket from --config or \(DaemonConfig.defaultPath), else /run/tded.sock).")
    var socket: String?

    @Option(name: .long, help: "Config file to take the socket path from.")
    var config: String?

    @Flag(name: .long, help: "Print the raw JSON line.")
    var json = false

    func run() throws {
        var path = socket
        if path == nil {
            let cfgPath = config ?? (FileManager.default.fileExists(atPath: DaemonConfig.defaultPath) ? DaemonConfig.defaultPath : nil)
            if let p = cfgPath, let c = try? DaemonConfig.load(path: p) { path = c.publish.socket }
        }
        let sock = path ?? DaemonConfig().publish.socket
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
