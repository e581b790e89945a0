// BlockFeeding.swift: feeding a signal to a streaming object in irregular blocks, the one
// loop the tests use to check that results do not depend on how a stream is cut.

/// The ranges that cut `0..<n` into consecutive blocks of `sizes` (cycled; the last is cut short).
public func blockRanges(_ n: Int, sizes: [Int]) -> [Range<Int>] {
    precondition(!sizes.isEmpty && sizes.allSatisfy { $0 > 0 }, "block sizes must be positive")
    var out: [Range<Int>] = [], i = 0, k = 0
    while i < n {
        let m = min(sizes[k % sizes.count], n - i)
        out.append(i..<(i + m)); i += m; k += 1
    }
    return out
}

/// Calls `body` with consecutive blocks of `x` of `sizes` (cycled).
public func feedInBlocks(_ x: [Float], sizes: [Int], _ body: (UnsafeBufferPointer<Float>) throws -> Void) rethrows {
    try x.withUnsafeBufferPointer { xp in
        for r in blockRanges(xp.count, sizes: sizes) { try body(UnsafeBufferPointer(rebasing: xp[r])) }
    }
}

/// Calls `body` with consecutive stereo blocks of `left`/`right` (equal lengths) of `sizes` (cycled).
public func feedInBlocks(_ left: [Float], _ right: [Float], sizes: [Int],
                         _ body: (UnsafeBufferPointer<Float>, UnsafeBufferPointer<Float>) throws -> Void) rethrows {
    precondition(left.count == right.count, "left and right differ in length")
    try left.withUnsafeBufferPointer { lp in
        try right.withUnsafeBufferPointer { rp in
            for r in blockRanges(lp.count, sizes: sizes) {
                try body(UnsafeBufferPointer(rebasing: lp[r]), UnsafeBufferPointer(rebasing: rp[r]))
            }
        }
    }
}
