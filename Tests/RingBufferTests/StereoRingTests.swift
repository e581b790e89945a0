import Foundation
import XCTest
@testable import RingBuffer

final class StereoRingTests: XCTestCase {
    func testCapacityRoundsUpToPowerOfTwo() {
        XCTAssertEqual(StereoRing(minimumCapacity: 1).capacity, 2)
        XCTAssertEqual(StereoRing(minimumCapacity: 1000).capacity, 1024)
        XCTAssertEqual(StereoRing(minimumCapacity: 1024).capacity, 1024)
        XCTAssertEqual(StereoRing(minimumCapacity: 1025).capacity, 2048)
    }

    /// Writes and reads across the end of the storage many times, with block sizes that are
    /// coprime to the capacity, so every split position of the two-part copy is exercised.
    func testWraparoundPreservesOrder() {
        let ring = StereoRing(minimumCapacity: 16)
        var next: Float = 0, expect: Float = 0
        var inL = [Float](repeating: 0, count: 16), inR = inL
        var outL = [Float](repeating: 0, count: 16), outR = outL
        for round in 0..<500 {
            let wn = 1 + (round * 7) % 13
            for i in 0..<wn { inL[i] = next + Float(i); inR[i] = -(next + Float(i)) }
            let stored = ring.write(left: inL, right: inR, count: wn)
            next += Float(stored)
            let rn = ring.read(left: &outL, right: &outR, maxCount: 1 + (round * 5) % 11)
            for i in 0..<rn {
                XCTAssertEqual(outL[i], expect, "left out of order at round \(round)")
                XCTAssertEqual(outR[i], -expect, "right out of order at round \(round)")
                expect += 1
            }
        }
        // drain
        while true {
            let rn = ring.read(left: &outL, right: &outR, maxCount: 16)
            if rn == 0 { break }
            for i in 0..<rn { XCTAssertEqual(outL[i], expect); expect += 1 }
        }
        XCTAssertEqual(expect, next)
        XCTAssertEqual(ring.totalWritten, Int(next))
        XCTAssertEqual(ring.totalRead, Int(next))
    }

    func testOverrunDropsNewestAndCounts() {
        let ring = StereoRing(minimumCapacity: 8)
        let a = (0..<5).map(Float.init)
        XCTAssertEqual(ring.write(left: a, right: a, count: 5), 5)
        XCTAssertEqual(ring.overruns, 0)
        let b = (5..<10).map(Float.init)
        XCTAssertEqual(ring.write(left: b, right: b, count: 5), 3, "only 3 slots were free")
        XCTAssertEqual(ring.overruns, 1)
        XCTAssertEqual(ring.droppedFrames, 2)
        XCTAssertEqual(ring.write(left: b, right: b, count: 4), 0, "full ring stores nothing")
        XCTAssertEqual(ring.overruns, 2)
        XCTAssertEqual(ring.droppedFrames, 6)
        var l = [Float](repeating: -1, count: 8), r = l
        XCTAssertEqual(ring.read(left: &l, right: &r, maxCount: 8), 8)
        // Drop-newest: the oldest 8 frames survive intact, nothing was overwritten.
        XCTAssertEqual(l, [0, 1, 2, 3, 4, 5, 6, 7])
        XCTAssertEqual(r, [0, 1, 2, 3, 4, 5, 6, 7])
        XCTAssertEqual(ring.read(left: &l, right: &r, maxCount: 8), 0)
        // After draining, writes succeed again without counting.
        XCTAssertEqual(ring.write(left: a, right: a, count: 5), 5)
        XCTAssertEqual(ring.overruns, 2)
    }

    func testStridedAndClosureWrites() {
        let ring = StereoRing(minimumCapacity: 8)
        let interleaved: [Float] = [1, -1, 2, -2, 3, -3]
        interleaved.withUnsafeBufferPointer { p in
            XCTAssertEqual(ring.write(left: p.baseAddress!, right: p.baseAddress! + 1, count: 3, stride: 2), 3)
        }
        XCTAssertEqual(ring.write(count: 2) { StereoFrame(left: Float(10 + $0), right: Float(20 + $0)) }, 2)
        var l = [Float](repeating: 0, count: 8), r = l
        XCTAssertEqual(ring.read(left: &l, right: &r, maxCount: 8), 5)
        XCTAssertEqual(Array(l[0..<5]), [1, 2, 3, 10, 11])
        XCTAssertEqual(Array(r[0..<5]), [-1, -2, -3, 20, 21])
        XCTAssertEqual(ring.skip(3), 0)
    }

    /// A producer thread and a consumer thread move 10^8 frames through a small ring. The producer
    /// never blocks: when the ring is full it retries the remainder (so nothing is lost by design,
    /// and any loss or reordering would be a ring bug). Every frame carries its sequence number
    /// (exact in Float up to 2^24, so left = n mod 2^24 and right = n / 2^24).
    func testProducerConsumer1e8FramesNoLossNoReordering() throws {
        let total = 100_000_000
        let ring = StereoRing(minimumCapacity: 1 << 14)
        // Block sizes coprime with the capacity so reads and writes split at every position.
        let block = 3001
        let readBlock = 1777
        let producerDone = expectation(description: "producer")
        let consumerDone = expectation(description: "consumer")
        var errors = 0
        var firstError = ""
        var received = 0
        let start = Date()

        Thread.detachNewThread {
            let l = UnsafeMutablePointer<Float>.allocate(capacity: block)
            let r = UnsafeMutablePointer<Float>.allocate(capacity: block)
            var sent = 0
            var pending = 0, offset = 0
            while sent < total {
                if pending == 0 {
                    let n = min(block, total - sent)
                    for i in 0..<n {
                        let s = sent + i
                        l[i] = Float(s & 0xFF_FFFF)
                        r[i] = Float(s >> 24)
                    }
                    pending = n; offset = 0
                }
                // Bypass overrun accounting: only write what fits, then yield.
                let fit = min(pending, ring.availableToWrite)
                if fit > 0 {
                    let stored = ring.write(left: l + offset, right: r + offset, count: fit)
                    offset += stored; pending -= stored; sent += stored
                } else {
                    sched_yield()
                }
            }
            l.deallocate(); r.deallocate()
            producerDone.fulfill()
        }
        Thread.detachNewThread {
            let l = UnsafeMutablePointer<Float>.allocate(capacity: block)
            let r = UnsafeMutablePointer<Float>.allocate(capacity: block)
            var expect = 0
            while expect < total {
                let n = ring.read(left: l, right: r, maxCount: readBlock)
                if n == 0 { sched_yield(); continue }
                for i in 0..<n {
                    let s = expect + i
                    if l[i] != Float(s & 0xFF_FFFF) || r[i] != Float(s >> 24) {
                        if errors == 0 { firstError = "frame \(s): got (\(l[i]), \(r[i]))" }
                        errors += 1
                    }
                }
                expect += n
            }
            received = expect
            l.deallocate(); r.deallocate()
            consumerDone.fulfill()
        }
        wait(for: [producerDone, consumerDone], timeout: 120)
        let secs = Date().timeIntervalSince(start)
        print("moved \(received) frames in \(String(format: "%.2f", secs)) s "
              + "(\(String(format: "%.1f", Double(received) / secs / 1e6)) Mframes/s)")
        XCTAssertEqual(received, total)
        XCTAssertEqual(errors, 0, "first error: \(firstError)")
        XCTAssertEqual(ring.overruns, 0)
        XCTAssertEqual(ring.totalWritten, total)
        XCTAssertEqual(ring.totalRead, total)
    }

    /// A producer that outruns a stalled consumer: writes are never blocked, drops are counted
    /// exactly, and everything stored is read back in order.
    func testOverrunAccountingWithSlowConsumer() {
        let ring = StereoRing(minimumCapacity: 1024)
        let attempts = 200_000
        var storedTotal = 0
        var seq: Float = 0
        let chunk = 64
        var l = [Float](repeating: 0, count: chunk), r = l
        var outL = [Float](repeating: 0, count: 256), outR = outL
        var readSeq: [Float] = []
        readSeq.reserveCapacity(attempts * chunk)
        for k in 0..<attempts / chunk {
            for i in 0..<chunk { l[i] = seq + Float(i); r[i] = 0 }
            let stored = ring.write(left: l, right: r, count: chunk)
            seq += Float(chunk) // sequence keeps counting so gaps are visible
            storedTotal += stored
            if k % 8 == 0 { // slow consumer: reads 256 per 8 chunks of 64 (half the rate)
                let n = ring.read(left: &outL, right: &outR, maxCount: 256)
                readSeq.append(contentsOf: outL[0..<n])
            }
        }
        while true {
            let n = ring.read(left: &outL, right: &outR, maxCount: 256)
            if n == 0 { break }
            readSeq.append(contentsOf: outL[0..<n])
        }
        let attempted = (attempts / chunk) * chunk
        XCTAssertGreaterThan(ring.overruns, 0)
        XCTAssertEqual(storedTotal + ring.droppedFrames, attempted)
        XCTAssertEqual(readSeq.count, storedTotal)
        // Strictly increasing: drops only make gaps, never reorder or duplicate.
        for i in 1..<readSeq.count where readSeq[i] <= readSeq[i - 1] {
            XCTFail("reordered at \(i)"); break
        }
    }
}
