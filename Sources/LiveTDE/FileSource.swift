import Atomics
import Foundation
import Logging
import RingBuffer

/// Replays a stereo recording (already at the engine rate) into the ring from its own thread.
///
/// - `realtime: true` paces writes by the monotonic clock (one block every `block / rate`
///   seconds, scheduled against the start time so it does not drift); frames the engine cannot
///   keep up with are dropped and counted by the ring, exactly like a sound card.
/// - `realtime: false` replays as fast as the engine consumes: it waits for room in the ring
///   instead of dropping, so every frame is analysed.
/// - `loops` replays the file that many times back to back (0 = forever).
public final class FileSource: AudioSource, @unchecked Sendable {
    /// Counters (`finished` turns 1 after the last frame).
    public let stats = CaptureStats()
    /// `file:<path>`.
    public let label: String
    private let left: [Float]
    private let right: [Float]
    private let rate: Int
    private let realtime: Bool
    private let loops: Int
    private let ring: StereoRing
    private let block: Int
    private let keepRunning = ManagedAtomic<Bool>(true)

    /// Creates a source over planar samples at `rate` Hz.
    public init(label: String, left: [Float], right: [Float], rate: Int, realtime: Bool,
                loops: Int = 1, ring: StereoRing, blockFrames: Int = 256) {
        precondition(left.count == right.count)
        self.label = label
        self.left = left; self.right = right
        self.rate = rate; self.realtime = realtime; self.loops = loops
        self.ring = ring
        self.block = max(1, min(blockFrames, ring.capacity / 2))
    }

    /// Starts the replay thread.
    public func start() {
        let t = Thread { [self] in self.run() }
        t.name = "tded-file"
        t.start()
    }

    /// Stops the replay after the current block.
    public func stop() { keepRunning.store(false, ordering: .relaxed) }

    private func run() {
        setThreadName("tded-file")  // visible in top -H and /proc
        stats.opens.wrappingIncrement(ordering: .relaxed)
        stats.running.store(1, ordering: .relaxed)
        let start = monotonicSeconds()
        var sent = 0 // frames sent in total (pacing)
        var pass = 0
        left.withUnsafeBufferPointer { l in
            right.withUnsafeBufferPointer { r in
                outer: while keepRunning.load(ordering: .relaxed) && (loops == 0 || pass < loops) {
                    var i = 0
                    while i < l.count {
                        guard keepRunning.load(ordering: .relaxed) else { break outer }
                        let n = min(block, l.count - i)
                        if realtime {
                            let due = start + Double(sent + n) / Double(rate)
                            let wait = due - monotonicSeconds()
                            if wait > 0 { usleep(useconds_t(wait * 1e6)) }
                            ring.write(left: l.baseAddress! + i, right: r.baseAddress! + i, count: n)
                        } else {
                            while ring.availableToWrite < n {
                                guard keepRunning.load(ordering: .relaxed) else { break outer }
                                usleep(500)
                            }
                            ring.write(left: l.baseAddress! + i, right: r.baseAddress! + i, count: n)
                        }
                        stats.frames.wrappingIncrement(by: n, ordering: .relaxed)
                        sent += n
                        i += n
                    }
                    pass += 1
                }
            }
        }
        stats.running.store(0, ordering: .relaxed)
        stats.finished.store(1, ordering: .releasing)
    }
}

/// Loads a recording for `--input` through libsndfile (`AudioLoader`, picking `channels` from
/// files with more than two) and resamples it to `rate` with the shared `Resampler` when needed.
public func loadStereoForDaemon(path: String, rate: Int, channels: [Int]) throws -> (left: [Float], right: [Float]) {
    let pick: (Int, Int)? = channels == [0, 1] ? nil : (channels[0], channels[1])
    return try AudioLoader.load(path: path, channels: pick, rate: rate)
}
