// EngineThread.swift: the daemon's engine thread: ring -> sanitizer -> TDEPipeline -> lines.
import Atomics
import Engine
import Foundation
import Logging
import RingBuffer

/// Reads the ring, runs the pipeline, publishes every update. Allocation-free per sample:
/// the block buffers are allocated once; each published update costs two allocations (the
/// line and its hand-off to the event loop), measured with scripts/alloc-count.c.
final class EngineThread: @unchecked Sendable {
    let finished = ManagedAtomic<Bool>(false)
    let framesProcessed = ManagedAtomic<Int>(0)
    let cpuNanos = ManagedAtomic<Int>(0)
    /// Input samples replaced (not finite) and clipped (beyond full scale), see `InputSanitizer`.
    let nonfiniteSamples = ManagedAtomic<Int>(0)
    let clippedSamples = ManagedAtomic<Int>(0)
    private let sanitizer = InputSanitizer()
    private let heartbeat = ManagedAtomic<Int>(0)  // monotonic ms of last loop turn
    private let ring: StereoRing
    private var pipeline: TDEPipeline
    private let publisher: Publisher
    private let echo: Bool
    private let source: AudioSource
    private let logger: Logger
    private let keepRunning = ManagedAtomic<Bool>(true)
    private let pendingLock = NSLock()
    private var pendingPipeline: TDEPipeline?
    private let hasPending = ManagedAtomic<Bool>(false)
    private var thread: Thread?
    private let done = DispatchSemaphore(value: 0)
    private var seq = 0
    static let block = 256

    init(ring: StereoRing, pipeline: TDEPipeline, publisher: Publisher, echo: Bool,
         source: AudioSource, logger: Logger) {
        self.ring = ring; self.pipeline = pipeline; self.publisher = publisher
        self.echo = echo; self.source = source; self.logger = logger
    }

    func start() {
        heartbeat.store(Int(monotonicSeconds() * 1000), ordering: .relaxed)
        let t = Thread { [self] in self.run() }
        t.name = "tded-engine"
        t.stackSize = 4 << 20
        thread = t
        t.start()
    }

    func stop() {
        keepRunning.store(false, ordering: .relaxed)
        _ = done.wait(timeout: .now() + 2)
    }

    /// Seconds since the engine loop last turned.
    func heartbeatAge() -> Double {
        monotonicSeconds() - Double(heartbeat.load(ordering: .relaxed)) / 1000
    }

    /// True while a pipeline handed to `replacePipeline` has not been swapped in yet.
    var pipelinePending: Bool { hasPending.load(ordering: .acquiring) }

    /// Swaps in a new pipeline at the next block boundary (SIGHUP). The stream clock restarts.
    func replacePipeline(_ p: TDEPipeline) {
        pendingLock.lock(); pendingPipeline = p; pendingLock.unlock()
        hasPending.store(true, ordering: .releasing)
    }

    private func run() {
        setThreadName("tded-engine")  // visible in top -H and /proc
        let l = UnsafeMutablePointer<Float>.allocate(capacity: EngineThread.block)
        let r = UnsafeMutablePointer<Float>.allocate(capacity: EngineThread.block)
        defer { l.deallocate(); r.deallocate(); done.signal() }
        var timeOffset = 0.0 // seconds of audio before the current pipeline (after a reload)
        while keepRunning.load(ordering: .relaxed) {
            heartbeat.store(Int(monotonicSeconds() * 1000), ordering: .relaxed)
            if hasPending.load(ordering: .acquiring) {
                pendingLock.lock()
                if let p = pendingPipeline {
                    timeOffset += Double(pipeline.samplesProcessed) / pipeline.config.sampleRate
                    pipeline = p; pendingPipeline = nil
                    sanitizer.restartStream()
                }
                hasPending.store(false, ordering: .relaxed)
                pendingLock.unlock()
            }
            let n = ring.read(left: l, right: r, maxCount: EngineThread.block)
            if n == 0 {
                if source.stats.finished.load(ordering: .acquiring) == 1 && ring.availableToRead == 0 {
                    finished.store(true, ordering: .releasing)
                    // Stay alive (idle) so status still answers until the daemon exits.
                    usleep(20_000)
                    continue
                }
                usleep(2000)
                continue
            }
            let c0 = ThreadCPUClock.nanoseconds()
            let off = timeOffset
            sanitizer.clean(l, r, count: n, position: pipeline.samplesProcessed)
            nonfiniteSamples.store(sanitizer.nonfiniteSamples, ordering: .relaxed)
            clippedSamples.store(sanitizer.clippedSamples, ordering: .relaxed)
            let span = pipeline.config.analysisSpan
            pipeline.process(left: UnsafeBufferPointer(start: l, count: n),
                             right: UnsafeBufferPointer(start: r, count: n)) { u in
                var u = sanitizer.flag(u, span: span).sanitized
                u.t += off
                seq += 1
                let line = liveLine(u, seq: seq, sampleRate: pipeline.config.sampleRate)
                publisher.publish(line)
                if echo { print(line); fflush(stdout) }
            }
            cpuNanos.wrappingIncrement(by: Int(ThreadCPUClock.nanoseconds() &- c0), ordering: .relaxed)
            framesProcessed.wrappingIncrement(by: n, ordering: .relaxed)
        }
    }
}
