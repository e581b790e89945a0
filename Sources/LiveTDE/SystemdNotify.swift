import Foundation

/// The systemd notify protocol (`sd_notify`) and socket activation (`sd_listen_fds`) without
/// libsystemd: datagrams to `$NOTIFY_SOCKET` (a path, or `@name` for the abstract namespace).
public final class SystemdNotify: @unchecked Sendable {
    private let fd: CInt
    private var addr = sockaddr_un()
    private var addrLen: socklen_t = 0
    /// Watchdog interval requested by systemd (`WATCHDOG_USEC`), nil when none.
    public let watchdogInterval: Double?

    /// Reads `NOTIFY_SOCKET` / `WATCHDOG_USEC` from `environment`; returns nil when the process
    /// was not started by systemd with `Type=notify`.
    public init?(environment: [String: String] = ProcessInfo.processInfo.environment) {
        guard let path = environment["NOTIFY_SOCKET"], !path.isEmpty else { return nil }
        var bytes = Array(path.utf8)
        let abstract = bytes.first == UInt8(ascii: "@")
        if abstract { bytes[0] = 0 }
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { return nil }
        let s = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard s >= 0 else { return nil }
        fd = s
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
        }
        addrLen = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + (abstract ? 0 : 1))
        if let us = environment["WATCHDOG_USEC"].flatMap(Double.init), us > 0,
           environment["WATCHDOG_PID"].flatMap(Int32.init).map({ $0 == getpid() }) ?? true {
            watchdogInterval = us / 1e6
        } else {
            watchdogInterval = nil
        }
    }

    deinit { close(fd) }

    /// Sends one notification, e.g. `"READY=1\nSTATUS=capturing"`. Returns false on failure.
    @discardableResult
    public func send(_ state: String) -> Bool {
        let data = Array(state.utf8)
        let n = withUnsafePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                sendto(fd, data, data.count, Int32(MSG_NOSIGNAL), $0, addrLen)
            }
        }
        return n == data.count
    }

    /// Descriptors passed by socket activation (`LISTEN_FDS`, starting at 3), when
    /// `LISTEN_PID` is this process. The variables are cleared so children do not inherit them.
    public static func listenFDs(environment: [String: String] = ProcessInfo.processInfo.environment) -> [CInt] {
        guard let pid = environment["LISTEN_PID"].flatMap(Int32.init), pid == getpid(),
              let n = environment["LISTEN_FDS"].flatMap(Int32.init), n > 0 else { return [] }
        unsetenv("LISTEN_PID"); unsetenv("LISTEN_FDS"); unsetenv("LISTEN_FDNAMES")
        return (0..<n).map { 3 + $0 }.map { fd in
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            return fd
        }
    }
}
