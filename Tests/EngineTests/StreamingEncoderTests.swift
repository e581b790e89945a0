// The encoder's arithmetic contract (docs/encoder-spec.md, "Arithmetic of the Swift engine"):
// votes and embeddings are bit-identical however the stream is cut and whatever the block
// width, under whichever OpenBLAS kernel this process runs (CI runs these tests with
// OPENBLAS_CORETYPE unset, Haswell and SkylakeX). Test models have widths that are not
// multiples of 16, where OpenBLAS's kernels differ most (M tails).
import COpenBLAS
import XCTest
import EngineTestSupport
@testable import Engine

final class StreamingEncoderTests: XCTestCase {
    override class func setUp() {
        super.setUp()
        BLASRuntime.useOneThread()
    }

    /// Block splits: the daemon's ALSA period (256), the pipeline's update hop (800), the
    /// splits that exposed kernel-dependent results (500 / 777), single samples, one block
    /// larger than a GEMM chunk, and irregular sizes around the block width.
    static let splits: [[Int]] = [[256], [800], [500], [777], [1], [4096], [1, 255, 256, 257, 3000, 13], [23, 24, 25, 97]]

    func stereoClip(count: Int, seed: UInt64) -> (left: [Float], right: [Float]) {
        let s = TestSignals.stereo(.speechLike, count: count, delay: -5, snrDb: 20, seed: seed)
        return (s.left, s.right)
    }

    /// LearnedEstimator at the production block size (maxBlock 256): every split of the stream
    /// gives bit-identical votes.
    func checkVotesIndependentOfSplit(model: EncoderModel, label: String, voteStride: Int) throws {
        let clip = stereoClip(count: 6000, seed: 31)
        var reference: [Vote]? = nil
        for sizes in Self.splits {
            let est = try LearnedEstimator(model: model, options: .init(voteStride: voteStride, maxBlock: 256))
            let votes = runEstimator(est, left: clip.left, right: clip.right,
                                     blocks: blockRanges(clip.left.count, sizes: sizes)).map { $0.0 }
            guard let ref = reference else {
                XCTAssertGreaterThan(votes.count, 4000 / voteStride, "\(label): votes came out")
                XCTAssertTrue(votes.contains { $0.delay != $0.delay.rounded() }, "\(label): sub-sample votes")
                reference = votes
                continue
            }
            XCTAssertEqual(votes.map { $0.start }, ref.map { $0.start }, "\(label) blocks \(sizes): vote windows")
            let differing = zip(votes, ref).filter { $0.0.delay.bitPattern != $0.1.delay.bitPattern }
            XCTAssertTrue(differing.isEmpty, "\(label) blocks \(sizes): \(differing.count)/\(ref.count) votes differ from blocks \(Self.splits[0]), "
                          + "e.g. \(differing.prefix(2).map { "window \($0.0.start): \($0.0.delay) vs \($0.1.delay)" }) "
                          + "(OpenBLAS core \(BLASRuntime.coreName))")
        }
    }

    func testVotesIndependentOfSplitWidth40() throws {
        try checkVotesIndependentOfSplit(model: try smallV1Model(width: 40, emb: 20, seed: 40), label: "width 40/20", voteStride: 8)
    }

    func testVotesIndependentOfSplitWidth24() throws {
        try checkVotesIndependentOfSplit(model: try smallV1Model(width: 24, emb: 16, seed: 24), label: "width 24/16", voteStride: 3)
    }

    /// The pooled layout (R = 48, M = 91) at an odd width.
    func testVotesIndependentOfSplitPooledWidth36() throws {
        try checkVotesIndependentOfSplit(model: try pooledModel(width: 36, emb: 28), label: "pooled 36/28", voteStride: 8)
    }

    /// Stream embeddings at every window start: identical for every split and every block width
    /// (`maxBlock` only changes how many fixed-shape GEMMs run per push, never their shape).
    func testEmbeddingsIndependentOfSplitAndBlockWidth() throws {
        let model = try smallV1Model(width: 40, emb: 20, seed: 41)
        let x = stereoClip(count: 1024 + 700, seed: 9).left
        var reference: [Float]? = nil
        for (sizes, maxBlock) in [([256], 256), ([777], 256), ([1, 300, 5], 256), ([500], 17), ([64], 64), ([2000], 1000)] {
            let e = streamEmbeddings(model: model, x, blocks: blockRanges(x.count, sizes: sizes), maxBlock: maxBlock)
            XCTAssertFalse(e.contains { $0.isNaN })
            if let ref = reference {
                let nd = zip(e, ref).filter { $0.0.bitPattern != $0.1.bitPattern }.count
                XCTAssertEqual(nd, 0, "blocks \(sizes) maxBlock \(maxBlock): \(nd) embedding values differ (OpenBLAS core \(BLASRuntime.coreName))")
            } else { reference = e }
        }
    }

    /// Why operand addresses and padding do not matter: at the encoder's GEMM shape (N = one
    /// group), each output column of `cblas_sgemm` is bit-identical whatever the alignment of
    /// B and C (kernel-1 layers pass their input column buffer in place, at offsets of
    /// `24 * in` floats) and whatever the other columns of B hold (a provisional group's
    /// padding).
    func testSgemmColumnsIgnoreOperandAlignmentAndNeighbours() {
        let N = gemmQuantum
        var rng = SeededRNG(seed: 77)
        // (M, K) of the test models' and the shipped model's layers.
        for (M, K) in [(40, 256), (40, 120), (40, 80), (20, 40), (36, 108), (28, 36), (24, 72), (128, 256), (128, 384), (160, 480)] {
            let a = UnsafeMutablePointer<Float>.allocate(capacity: M * K)
            let slack = 64
            let b = UnsafeMutablePointer<Float>.allocate(capacity: K * N + slack)
            let c = UnsafeMutablePointer<Float>.allocate(capacity: M * N + slack)
            defer { a.deallocate(); b.deallocate(); c.deallocate() }
            for i in 0..<(M * K) { a[i] = Float(rng.gaussian()) }
            let b0 = (0..<(K * N)).map { _ in Float(rng.gaussian()) }
            func gemm(bOffset: Int, cOffset: Int, neighbours: UInt64?) -> [Float] {
                for i in 0..<(K * N + slack) { b[i] = Float(rng.gaussian()) }
                for i in 0..<(M * N + slack) { c[i] = .nan }
                let bb = b + bOffset, cc = c + cOffset
                for i in 0..<(K * N) { bb[i] = b0[i] }
                if let seed = neighbours {  // every column but the even ones replaced
                    var r = SeededRNG(seed: seed)
                    for q in stride(from: 1, to: N, by: 2) { for k in 0..<K { bb[q * K + k] = Float(r.gaussian()) * 100 } }
                }
                cblas_sgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, Int32(M), Int32(N), Int32(K), 1,
                            a, Int32(M), bb, Int32(K), 0, cc, Int32(M))
                return Array(UnsafeBufferPointer(start: cc, count: M * N))
            }
            let ref = gemm(bOffset: 0, cOffset: 0, neighbours: nil)
            for (bo, co, nb) in [(1, 0, nil), (3, 7, nil), (4, 4, nil), (8, 1, nil), (15, 16, nil), (0, 0, UInt64(5)), (5, 3, UInt64(6))] as [(Int, Int, UInt64?)] {
                let got = gemm(bOffset: bo, cOffset: co, neighbours: nb)
                var differ = 0
                for q in 0..<N where nb == nil || q % 2 == 0 {
                    for m in 0..<M where got[q * M + m].bitPattern != ref[q * M + m].bitPattern { differ += 1 }
                }
                XCTAssertEqual(differ, 0, "M \(M) K \(K): B offset \(bo), C offset \(co), neighbours \(nb.map(String.init) ?? "same") "
                               + "(OpenBLAS core \(BLASRuntime.coreName))")
            }
        }
    }

    /// The old failure in one line: two estimators fed 500- and 777-sample blocks.
    func testResetAndDifferentBlocksReproduceVotesWidth40() throws {
        let est = try LearnedEstimator(model: try smallV1Model(width: 40, emb: 20, seed: 40))
        let sig = TestSignals.stereo(.chirp, count: 3000, delay: -3, seed: 4)
        let a = est.processAll(left: sig.left, right: sig.right, blockSize: 500)
        est.reset()
        let b = est.processAll(left: sig.left, right: sig.right, blockSize: 777)
        XCTAssertGreaterThan(a.count, 200)
        XCTAssertTrue(a == b, "votes after reset with other blocks differ (OpenBLAS core \(BLASRuntime.coreName))")
    }
}

/// A seeded random model of the pooled layout (like the `tiny` fixture: R = 48, M = 91) at
/// the given widths.
func pooledModel(width: Int, emb: Int, seed: UInt64 = 5) throws -> EncoderModel {
    let spec: [(Int, Int, Int, Int, EncoderLayer.Activation)] =
        [(256, width, 1, 8, .relu), (width, width, 3, 8, .relu), (width, width, 3, 16, .relu), (width, emb, 1, 8, .none)]
    return try randomModel(spec, seed: seed)
}
