// ProcessMemory.swift: the process's memory and descriptor counts, for `status` (soak tests
// read them) and for trimming the heap after a reload.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Resident memory, malloc heap use and open descriptors of this process.
public struct ProcessMemory: Equatable, Sendable {
    /// Resident set size, KB (`/proc/self/statm`).
    public var rssKB: Int
    /// Bytes handed out by malloc and not freed (all arenas, mmapped blocks included), KB.
    public var heapInUseKB: Int
    /// Bytes malloc holds but has not handed out (free chunks kept in its arenas), KB.
    public var heapFreeKB: Int
    /// Open file descriptors (`/proc/self/fd`).
    public var fds: Int

    /// Measures now (-1 for what cannot be read).
    public static func sample() -> ProcessMemory {
        var rss = -1
        if let s = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) {
            let parts = s.split(separator: " ")
            if parts.count > 1, let pages = Int(parts[1]) { rss = pages * Int(sysconf(Int32(_SC_PAGESIZE))) / 1024 }
        }
        let (used, free) = heap()
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count).map { $0 - 1 } ?? -1
        return ProcessMemory(rssKB: rss, heapInUseKB: used, heapFreeKB: free, fds: fds)
    }

    private typealias MallocInfoFn = @convention(c) (Int32, UnsafeMutablePointer<FILE>?) -> Int32
    private typealias MallocTrimFn = @convention(c) (Int) -> Int32

    private static func symbol(_ name: String) -> UnsafeMutableRawPointer? {
        dlsym(UnsafeMutableRawPointer(bitPattern: 0), name)
    }

    /// (in use, free) KB from glibc's `malloc_info` (all arenas; found with dlsym, as
    /// malloc.h is not part of the Glibc module). (-1, -1) elsewhere.
    static func heap() -> (Int, Int) {
        guard let sym = symbol("malloc_info") else { return (-1, -1) }
        let info = unsafeBitCast(sym, to: MallocInfoFn.self)
        var buf: UnsafeMutablePointer<CChar>? = nil
        var len = 0
        guard let f = open_memstream(&buf, &len) else { return (-1, -1) }
        _ = info(0, f)
        fclose(f)
        guard let b = buf else { return (-1, -1) }
        defer { free(b) }
        let xml = String(cString: b)
        // The process-wide totals follow the last </heap>.
        let tail = xml.range(of: "</heap>", options: .backwards).map { String(xml[$0.upperBound...]) } ?? xml
        func attr(_ type: String, _ tag: String) -> Int? {
            guard let r = tail.range(of: "<\(tag) type=\"\(type)\"") else { return nil }
            let rest = tail[r.upperBound...]
            guard let s = rest.range(of: "size=\"") else { return nil }
            return Int(rest[s.upperBound...].prefix { $0.isNumber })
        }
        guard let system = attr("current", "system") else { return (-1, -1) }
        let free = (attr("fast", "total") ?? 0) + (attr("rest", "total") ?? 0)
        let mmap = attr("mmap", "total") ?? 0
        return ((system - free + mmap) / 1024, free / 1024)
    }

    /// Returns free heap memory to the system (`malloc_trim`), e.g. after a reload swapped
    /// pipelines; returns true when something was released.
    @discardableResult
    public static func trimHeap() -> Bool {
        guard let sym = symbol("malloc_trim") else { return false }
        return unsafeBitCast(sym, to: MallocTrimFn.self)(0) != 0
    }
}
