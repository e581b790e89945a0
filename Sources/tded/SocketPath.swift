import Foundation
import LiveTDE

/// The daemon socket a client subcommand talks to: `--socket`, else `publish.socket` from
/// `--config` (or the default config file when it exists), else the built-in default.
func daemonSocketPath(socket: String?, config: String?) -> String {
    if let s = socket { return s }
    let cfgPath = config ?? (FileManager.default.fileExists(atPath: DaemonConfig.defaultPath) ? DaemonConfig.defaultPath : nil)
    if let p = cfgPath, let c = try? DaemonConfig.load(path: p) { return c.publish.socket }
    return DaemonConfig().publish.socket
}
