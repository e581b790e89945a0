#if canImport(Glibc)
import Glibc
#endif
import Engine

/// The heap-allocation counter of `scripts/alloc-count.c`, read by `tded bench --check-alloc`.
enum MallocCounter {
    typealias CountFn = @convention(c) () -> UInt

    /// The counter function, or nil (after printing how to load it) when the shim is not
    /// preloaded.
    static func load(label: String) -> CountFn? {
        guard let sym = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "tded_malloc_count") else {
            print("  \(label): malloc counter not loaded; build scripts/alloc-count.c and run with "
                  + "LD_PRELOAD=/tmp/alloc-count.so (see the comment at its top)")
            return nil
        }
        return unsafeBitCast(sym, to: CountFn.self)
    }

    /// What `measure` saw in the steady state.
    struct Measurement {
        /// Heap allocations after the warm-up.
        var allocations: UInt
        /// Samples per channel processed after the warm-up.
        var steadySamples: Int
        /// Sum of the updates' delays (to check that work was really done).
        var delaySum: Double
        /// Start sample of the first (up to 8) steady-state blocks that allocated.
        var allocatingBlocks: ArraySlice<Int>
    }

    /// Feeds the first `samples` of `left`/`right` to `pipeline` in `block`-sample blocks and
    /// counts the heap allocations made after the first `warm` samples.
    static func measure(_ count: CountFn, pipeline: TDEPipeline, left: [Float], right: [Float],
                        samples n: Int, warm: Int, block: Int) -> Measurement {
        var before: UInt = 0, sink = 0.0, i = 0
        var where_ = [Int](repeating: 0, count: 8), whereN = 0
        left.withUnsafeBufferPointer { l in
            right.withUnsafeBufferPointer { r in
                while i < n {
                    if i >= warm && before == 0 { before = count() }
                    let c0 = count()
                    let m = min(block, n - i)
                    pipeline.process(left: UnsafeBufferPointer(rebasing: l[i..<i + m]),
                                     right: UnsafeBufferPointer(rebasing: r[i..<i + m])) { u in sink += u.delaySamples }
                    if i >= warm && count() != c0 { where_[whereN % 8] = i; whereN += 1 }
                    i += m
                }
            }
        }
        let after = count()  // before building any message: string interpolation allocates
        return Measurement(allocations: after - before, steadySamples: n - warm, delaySum: sink,
                           allocatingBlocks: where_.prefix(min(whereN, 8)))
    }
}
