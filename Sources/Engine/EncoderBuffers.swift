// EncoderBuffers.swift: the streaming encoder's storage: aligned float arrays and the
// sliding column buffers each layer keeps of its input.
import Foundation

/// 64-byte aligned, zero-initialised float storage owned by the encoder.
@inline(__always)
func alignedFloats(_ count: Int) -> UnsafeMutablePointer<Float> {
    let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * 4, alignment: 64)
    let p = raw.bindMemory(to: Float.self, capacity: max(count, 1))
    p.initialize(repeating: 0, count: max(count, 1))
    return p
}

/// Column-major `[channels x capacity]` storage of a sequence. Column `end` holds the first
/// column not yet committed; the `history` columns before it are kept when the buffer
/// compacts (a sliding window with lazy compaction: one memmove per `capacity - history -
/// room` columns, never per block).
final class ColumnBuffer {
    let channels: Int
    let history: Int
    let capacity: Int
    let data: UnsafeMutablePointer<Float>
    /// First uncommitted column.
    var end: Int

    /// `room`: most columns ever written at or after `end` before the next commit.
    init(channels: Int, history: Int, room: Int) {
        self.channels = channels
        self.history = history
        capacity = 2 * (history + room)
        data = alignedFloats(channels * capacity)
        end = history  // the history starts as zeros (positions before the stream start)
    }
    deinit { data.deallocate() }

    /// Makes room for `n` columns at and after `end`, keeping the history and the first `keep`
    /// columns at and after `end`.
    @inline(__always) func reserve(_ n: Int, keep: Int = 0) {
        if end + n > capacity {
            let move = history + keep
            if move > 0 { data.update(from: data + (end - history) * channels, count: move * channels) }
            end = history
        }
    }

    func reset() {
        data.update(repeating: 0, count: channels * capacity)
        end = history
    }

    @inline(__always) func column(_ i: Int) -> UnsafeMutablePointer<Float> { data + i * channels }
}
