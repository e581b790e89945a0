// SourceThread.swift: small helpers for the capture, replay and engine threads.
import Foundation

/// Sleeps `seconds`, waking early (in 50 ms steps) when `keepGoing` turns false.
func interruptibleSleep(_ seconds: Double, while keepGoing: () -> Bool) {
    var left = seconds
    while left > 0 && keepGoing() {
        let s = min(left, 0.05)
        usleep(useconds_t(s * 1e6))
        left -= s
    }
}

/// Monotonic clock in seconds.
@inline(__always) func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

/// Names the calling thread (via /proc/thread-self/comm; Glibc's pthread_setname_np is not
/// visible to Swift). Called once when a thread starts.
func setThreadName(_ name: String) {
    let fd = open("/proc/thread-self/comm", O_WRONLY)
    guard fd >= 0 else { return }
    _ = name.withCString { write(fd, $0, strlen($0)) }
    close(fd)
}
