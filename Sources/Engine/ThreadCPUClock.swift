// ThreadCPUClock.swift: the one thread-CPU clock (engine load, bench, encoder profiling).
import Foundation

/// CPU time of the calling thread: time-slicing by other processes on a shared machine does
/// not count, so it measures the work a thread did, not how long it waited.
public enum ThreadCPUClock {
    /// CPU time consumed so far by the calling thread, nanoseconds (`CLOCK_THREAD_CPUTIME_ID`).
    @inline(__always) public static func nanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }
}
