#if canImport(Glibc)
import Glibc
#endif

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
}
