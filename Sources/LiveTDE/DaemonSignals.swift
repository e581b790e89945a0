// DaemonSignals.swift: SIGTERM/SIGINT/SIGHUP never kill the daemon, whichever thread gets them.
import Atomics
import Foundation

/// TERM/INT/HUP caught by a handler (a signal delivered to a thread that does not block it);
/// the daemon loop takes them. The handler only does one lock-free atomic OR.
public enum DaemonSignals {
    private static let pending = ManagedAtomic<Int>(0)

    /// Installs the handlers (idempotent). Call as early as possible: from then on these
    /// signals never kill the process, whichever thread receives them.
    public static func install() {
        _ = pending.load(ordering: .relaxed)   // initialise before any handler can run
        for s in [SIGTERM, SIGINT, SIGHUP] {
            var sa = sigaction()
            sa.__sigaction_handler.sa_handler = { sig in
                DaemonSignals.pending.loadThenBitwiseOr(with: 1 << Int(sig), ordering: .relaxed)
            }
            sigemptyset(&sa.sa_mask)
            sa.sa_flags = SA_RESTART
            sigaction(s, &sa, nil)
        }
    }

    /// The signals caught since the last call.
    public static func take() -> Set<Int32> {
        let bits = pending.exchange(0, ordering: .relaxed)
        return Set([SIGTERM, SIGINT, SIGHUP].filter { bits & (1 << Int($0)) != 0 })
    }
}
