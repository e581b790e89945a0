import ArgumentParser
import Foundation
import LiveTDE

/// `--config` and `--socket`, shared by `run` (the daemon) and its clients `status`, `watch`
/// and `view`: the same config file names the same socket for all of them.
struct DaemonLocation: ParsableArguments {
    @Option(name: .long, help: "Config file (TOML; default \(DaemonConfig.defaultPath) when it exists).")
    var config: String?

    @Option(name: .long, help: "Daemon socket (overrides publish.socket of the config; default /run/tded.sock).")
    var socket: String?

    /// The config file in effect: `--config`, else the default path when it exists.
    var configPath: String? {
        config ?? (FileManager.default.fileExists(atPath: DaemonConfig.defaultPath) ? DaemonConfig.defaultPath : nil)
    }

    /// The daemon socket a client subcommand talks to: `--socket`, else `publish.socket` from
    /// the config file in effect, else the built-in default.
    var socketPath: String {
        if let s = socket { return s }
        if let p = configPath, let c = try? DaemonConfig.load(path: p) { return c.publish.socket }
        return DaemonConfig().publish.socket
    }
}
