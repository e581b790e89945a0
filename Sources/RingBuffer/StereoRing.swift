import Atomics

/// One stereo audio frame: a left and a right sample, as float in [-1, 1].
public struct StereoFrame: Equatable, Sendable {
    /// Left channel sample.
    public var left: Float
    /// Right channel sample.
    public var right: Float
    /// Creates a frame.
    public init(left: Float, right: Float) { self.left = left; self.right = right }
}

/// A lock-free single-producer / single-consumer ring of stereo frames.
///
/// - Capacity is a power of two fixed at creation; storage is allocated once in `init` and never
///   again. `write` and `read` take no lock and allocate nothing.
/// - Exactly one thread may call the producer side (`write`, `availableToWrite`) and exactly one
///   thread the consumer side (`read`, `availableToRead`, `skip`). Counters (`overruns`, ...) may
///   be read from any thread.
/// - **Overrun policy: drop newest.** The producer never blocks and never overwrites frames the
///   consumer has not read: when the ring is full, the frames that do not fit are discarded and
///   counted in `droppedFrames`, and each write that had to drop counts once in `overruns`.
///   Dropping the newest keeps the consumer's view contiguous up to the gap (it never reads a
///   half-overwritten region), and the gap is visible through the counters.
///
/// Indices are free-running 64-bit counters (they never wrap in practice), masked into the
/// storage. The producer publishes `writeIndex` with release ordering after copying; the consumer
/// loads it with acquire ordering before reading, and symmetrically for `readIndex`.
public final class StereoRing: @unchecked Sendable {
    /// Number of frames the ring can hold (a power of two).
    public let capacity: Int
    private let mask: Int
    private let left: UnsafeMutablePointer<Float>
    private let right: UnsafeMutablePointer<Float>
    private let writeIndex = ManagedAtomic<Int>(0)
    private let readIndex = ManagedAtomic<Int>(0)
    private let overrunCount = ManagedAtomic<Int>(0)
    private let droppedCount = ManagedAtomic<Int>(0)

    /// Creates a ring holding at least `minimumCapacity` frames (rounded up to a power of two,
    /// at least 2).
    public init(minimumCapacity: Int) {
        precondition(minimumCapacity > 0 && minimumCapacity <= 1 << 40, "ring capacity out of range")
        var c = 2
        while c < minimumCapacity { c <<= 1 }
        capacity = c
        mask = c - 1
        left = .allocate(capacity: c)
        right = .allocate(capacity: c)
        left.initialize(repeating: 0, count: c)
        right.initialize(repeating: 0, count: c)
    }

    deinit {
        left.deallocate()
        right.deallocate()
    }

    /// Total writes that could not store all their frames (ring full). Any thread.
    public var overruns: Int { overrunCount.load(ordering: .relaxed) }
    /// Total frames discarded because the ring was full. Any thread.
    public var droppedFrames: Int { droppedCount.load(ordering: .relaxed) }
    /// Total frames ever stored (the producer's position). Any thread.
    public var totalWritten: Int { writeIndex.load(ordering: .acquiring) }
    /// Total frames ever consumed (the consumer's position). Any thread.
    public var totalRead: Int { readIndex.load(ordering: .acquiring) }

    /// Frames the producer can write without dropping. Producer thread.
    public var availableToWrite: Int {
        capacity - (writeIndex.load(ordering: .relaxed) - readIndex.load(ordering: .acquiring))
    }

    /// Frames ready for the consumer. Consumer thread.
    public var availableToRead: Int {
        writeIndex.load(ordering: .acquiring) - readIndex.load(ordering: .relaxed)
    }

    /// Producer: stores up to `count` frames given as left/right sample sequences (`stride`
    /// elements apart in each source, so interleaved buffers work with stride 2). Returns the
    /// number stored; the rest are dropped and counted. Never blocks, never allocates.
    @discardableResult
    public func write(left srcL: UnsafePointer<Float>, right srcR: UnsafePointer<Float>,
                      count: Int, stride: Int = 1) -> Int {
        let n = reserve(count)
        if n <= 0 { return 0 }
        let w = writeIndex.load(ordering: .relaxed)
        let start = w & mask
        if stride == 1 {
            let first = min(n, capacity - start)
            (left + start).update(from: srcL, count: first)
            (right + start).update(from: srcR, count: first)
            if first < n {
                left.update(from: srcL + first, count: n - first)
                right.update(from: srcR + first, count: n - first)
            }
        } else {
            var s = 0
            for i in 0..<n {
                let dst = (start &+ i) & mask
                left[dst] = srcL[s]
                right[dst] = srcR[s]
                s &+= stride
            }
        }
        writeIndex.store(w + n, ordering: .releasing)
        return n
    }

    /// Producer: stores up to `count` frames produced by `fill(i)` for i in 0..<count, in order
    /// (used by capture code to convert samples straight into the ring). `fill` must not touch
    /// the ring. Returns the number stored; the rest are dropped and counted.
    @discardableResult
    @inline(__always)
    public func write(count: Int, _ fill: (Int) -> StereoFrame) -> Int {
        let n = reserve(count)
        if n <= 0 { return 0 }
        let w = writeIndex.load(ordering: .relaxed)
        for i in 0..<n {
            let f = fill(i)
            let dst = (w &+ i) & mask
            left[dst] = f.left
            right[dst] = f.right
        }
        writeIndex.store(w + n, ordering: .releasing)
        return n
    }

    /// How many of `count` frames fit now; counts the overrun for the rest.
    @inline(__always)
    private func reserve(_ count: Int) -> Int {
        let w = writeIndex.load(ordering: .relaxed)
        let r = readIndex.load(ordering: .acquiring)
        let free = capacity - (w - r)
        let n = min(count, free)
        if n < count {
            overrunCount.wrappingIncrement(ordering: .relaxed)
            droppedCount.wrappingIncrement(by: count - max(n, 0), ordering: .relaxed)
        }
        return n
    }

    /// Consumer: copies up to `maxCount` frames into `dstL`/`dstR` and releases their slots.
    /// Returns the number copied (0 when empty). Never blocks, never allocates.
    @discardableResult
    public func read(left dstL: UnsafeMutablePointer<Float>, right dstR: UnsafeMutablePointer<Float>,
                     maxCount: Int) -> Int {
        let r = readIndex.load(ordering: .relaxed)
        let w = writeIndex.load(ordering: .acquiring)
        let n = min(maxCount, w - r)
        if n <= 0 { return 0 }
        let start = r & mask
        let first = min(n, capacity - start)
        dstL.update(from: left + start, count: first)
        dstR.update(from: right + start, count: first)
        if first < n {
            (dstL + first).update(from: left, count: n - first)
            (dstR + first).update(from: right, count: n - first)
        }
        readIndex.store(r + n, ordering: .releasing)
        return n
    }

    /// Consumer: discards up to `count` frames without copying. Returns the number discarded.
    @discardableResult
    public func skip(_ count: Int) -> Int {
        let r = readIndex.load(ordering: .relaxed)
        let w = writeIndex.load(ordering: .acquiring)
        let n = min(count, w - r)
        if n <= 0 { return 0 }
        readIndex.store(r + n, ordering: .releasing)
        return n
    }
}
