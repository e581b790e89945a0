// AudioSource.swift: what fills the capture -> engine ring (ALSA capture, file replay), and
// the counters every source keeps.
import Atomics

/// Counters and state of an audio source, readable from any thread.
public final class CaptureStats: @unchecked Sendable {
    /// Frames written into the ring (stored or dropped).
    public let frames = ManagedAtomic<Int>(0)
    /// Overruns/xruns recovered with `snd_pcm_recover` (EPIPE).
    public let xruns = ManagedAtomic<Int>(0)
    /// Other recovered errors (suspend, EINTR).
    public let recoveries = ManagedAtomic<Int>(0)
    /// Times the device was lost (read error it could not recover, or a runaway clock).
    public let deviceLost = ManagedAtomic<Int>(0)
    /// Times the device was (re)opened successfully.
    public let opens = ManagedAtomic<Int>(0)
    /// 1 while audio is flowing, 0 while waiting for the device.
    public let running = ManagedAtomic<Int>(0)
    /// 1 once a finite source (file) has delivered everything.
    public let finished = ManagedAtomic<Int>(0)
    /// Creates zeroed counters.
    public init() {}
}

/// Something that fills the ring from its own thread.
public protocol AudioSource: AnyObject {
    /// Short description for logs and status (`alsa:hw:1,0`, `file:demo.wav`).
    var label: String { get }
    /// Counters.
    var stats: CaptureStats { get }
    /// Starts the source thread.
    func start()
    /// Asks the source thread to stop; returns without waiting for a blocked device read.
    func stop()
}
