// LearnedEstimator: incremental votes vs a from-scratch computation, vote schedule, options,
// and recovery of a known delay by the shipped model.
import XCTest
import EngineTestSupport
@testable import Engine

/// A seeded random model of the shipped (v1) layout at a small width: deep dilated TCN whose
/// receptive field is the whole window (R = 768, M = 1), so the M = 1 path and long layer
/// histories are exercised as well as the pooled tiny fixture (R = 48, M = 91).
func smallV1Model(width: Int = 24, emb: Int = 16, seed: UInt64 = 11) throws -> EncoderModel {
    var spec: [(Int, Int, Int, Int, EncoderLayer.Activation)] = [(256, width, 1, 8, .relu)]
    for d in [8, 24, 72, 216] { spec.append((width, width, 3, d, .relu)) }
    spec.append((width, width, 2, 128, .relu))
    spec.append((width, emb, 1, 8, .none))
    return try randomModel(spec, seed: seed)
}

/// A model with seeded He-initialised weights for the layers `(in, out, kernel, dilation,
/// activation)`, on the shipped model's signal settings (16 kHz, nFFT 256, hop 8, window 1024).
func randomModel(_ spec: [(Int, Int, Int, Int, EncoderLayer.Activation)], seed: UInt64) throws -> EncoderModel {
    var rng = SeededRNG(seed: seed)
    let layers = spec.map { (i, o, k, d, a) -> EncoderLayer in
        let s = (2 / Double(i * k)).squareRoot()
        return EncoderLayer(inChannels: i, outChannels: o, kernel: k, dilation: d, activation: a,
                            weight: (0..<(o * i * k)).map { _ in Float(rng.gaussian() * s) },
                            bias: (0..<o).map { _ in Float(rng.gaussian() * 0.05) })
    }
    return try EncoderModel(sampleRate: 16000, nFFT: 256, hop: 8, window: 1024, tau: 0.05, maxDelay: 24,
                            phatBeta: 0.5, columnNorm: true, layers: layers)
}

/// Feeds the estimator in the given blocks; returns votes and, per vote, the samples consumed
/// when it came out.
/// With `flush`, the end-of-stream votes come last with consumed = -1.
func runEstimator(_ est: LearnedEstimator, left: [Float], right: [Float], blocks: [Range<Int>],
                  flush: Bool = true) -> [(Vote, Int64)] {
    var out: [(Vote, Int64)] = []
    let maxLen = blocks.map { $0.count }.max() ?? 1
    var scratch = [Vote](repeating: Vote(start: 0, delay: 0), count: est.maxVotes(forBlockLength: maxLen))
    for r in blocks {
        let got = left.withUnsafeBufferPointer { l in right.withUnsafeBufferPointer { rr in
            scratch.withUnsafeMutableBufferPointer { v in
                est.process(left: UnsafeBufferPointer(rebasing: l[r]), right: UnsafeBufferPointer(rebasing: rr[r]), votes: v)
            } } }
        for v in scratch[0..<got] { out.append((v, est.samplesConsumed)) }
    }
    if flush {
        let got = scratch.withUnsafeMutableBufferPointer { est.flush(votes: $0) }
        for v in scratch[0..<got] { out.append((v, -1)) }
    }
    return out
}

/// The committed shipped model (models/tded-stream-v1.safetensors). It is part of the tree:
/// a missing file fails the test that needs it (never a skip).
func shippedModelURL(file: StaticString = #filePath, line: UInt = #line) throws -> URL {
    try committedModelURL("tded-stream-v1.safetensors", file: file, line: line)
}

/// A model committed under `models/` (the test fails, naming it, when it is missing).
func committedModelURL(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws -> URL {
    let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../models/\(name)").standardizedFileURL
    guard FileManager.default.fileExists(atPath: url.path) else {
        XCTFail("committed model \(url.path) is missing", file: file, line: line)
        throw CocoaError(.fileNoSuchFile)
    }
    return url
}

final class LearnedEstimatorTests: XCTestCase {
    override class func setUp() {
        super.setUp()
        BLASRuntime.useOneThread()  // what tded's main does at process start
    }

    /// Delays from embeddings computed window by window from scratch.
    func fromScratchVotes(model: EncoderModel, left: [Float], right: [Float], stride: Int, argmax: Bool = false) -> [Vote] {
        let D = model.maxDelay, W = left.count - model.window + 1
        let ref = FromScratchEncoder(model: model)
        var rightCache: [Int: [Float]] = [:]
        func eR(_ j: Int) -> [Float] {
            if let e = rightCache[j] { return e }
            let e = right.withUnsafeBufferPointer { ref.embedding(samples: $0, start: j) }
            rightCache[j] = e
            return e
        }
        var votes: [Vote] = []
        var i = (D + stride - 1) / stride * stride
        while i + D < W {
            let eL = left.withUnsafeBufferPointer { ref.embedding(samples: $0, start: i) }
            var row = [Float](repeating: 0, count: 2 * D + 1)
            for k in 0...(2 * D) {
                let e = eR(i + k - D)
                var acc: Float = 0
                for c in e.indices { acc += eL[c] * e[c] }
                row[k] = acc / model.tau
            }
            votes.append(Vote(start: Int64(i), delay: row.withUnsafeBufferPointer { LearnedEstimator.delay(affinities: $0, argmax: argmax) }))
            i += stride
        }
        return votes
    }

    func checkIncrementalEqualsFromScratch(model: EncoderModel, label: String, strides: [Int]) throws {
        let sig = TestSignals.stereo(.speechLike, count: 1024 + 400, delay: 4, snrDb: 30, seed: 5)
        for stride in strides {
            let ref = fromScratchVotes(model: model, left: sig.left, right: sig.right, stride: stride)
            XCTAssertGreaterThan(ref.count, 10)
            var first: [Vote]? = nil
            for sizes in [[1, 7, 64, 333], [1424], [100, 1, 2, 3, 500]] {
                let est = try LearnedEstimator(model: model, options: .init(voteStride: stride, maxBlock: 64))
                let got = runEstimator(est, left: sig.left, right: sig.right,
                                       blocks: blockRanges(sig.left.count, sizes: sizes)).map { $0.0 }
                XCTAssertEqual(got.map { $0.start }, ref.map { $0.start }, "\(label) stride \(stride) blocks \(sizes): vote windows")
                var m: Float = 0
                for (a, b) in zip(got, ref) { m = max(m, abs(a.delay - b.delay)) }
                print("[learned \(label) stride \(stride) blocks \(sizes)] \(got.count) votes, max |incremental - from-scratch| = \(m)")
                XCTAssertLessThan(m, 1e-4, "\(label) stride \(stride) blocks \(sizes)")
                // The DelayEstimator contract: block sizes do not change the votes at all.
                if let f = first {
                    let same = zip(got, f).filter { $0.0 == $0.1 }.count
                    XCTAssertTrue(got == f, "\(label) stride \(stride) blocks \(sizes): only \(same)/\(f.count) votes bit-identical to the first block split")
                } else { first = got }
            }
        }
    }

    func testIncrementalEqualsFromScratchTinyPooledModel() throws {
        let fx = try EncoderFixture.load("tiny")
        try checkIncrementalEqualsFromScratch(model: fx.model, label: "tiny", strides: [8, 12])
    }

    func testIncrementalEqualsFromScratchDeepTCN() throws {
        try checkIncrementalEqualsFromScratch(model: try smallV1Model(), label: "v1-layout", strides: [8, 3])
    }

    /// Votes at multiples of the stride from the first complete band, in order. With 1-sample
    /// blocks each comes out exactly when both of its windows are computed: the left one as soon
    /// as its last column is in (eager left encoder), the right one `i + maxDelay` when the
    /// aligned group (96 columns) holding its last column is complete; never later than the call
    /// delivering sample `i + window - 1 + voteLatency`. `flush` releases the rest.
    func testVoteScheduleAndLatency() throws {
        let model = try smallV1Model()
        let est = try LearnedEstimator(model: model, options: .init(voteStride: 8))
        let G = Int64(LearnedEstimator.Options.defaultRightGroupColumns)
        XCTAssertEqual(G, 96)
        XCTAssertEqual(est.voteLatency, 24 + 95)
        XCTAssertEqual(est.windowLength, 1024)
        let n = 1400
        let sig = TestSignals.stereo(.white, count: n, delay: 2, seed: 2)
        let out = runEstimator(est, left: sig.left, right: sig.right, blocks: blockRanges(n, sizes: [1]))
        XCTAssertEqual(out.map { $0.0.start }, Array(stride(from: Int64(24), through: Int64(n - 1024 - 24), by: 8)))
        var flushed = 0
        for (v, consumed) in out {
            let i = v.start
            let uR = i + 24 + 768                       // right column completing window i + 24
            let rightReady = (uR / G + 1) * G - 1 + 256  // its group's last column is in
            let expected = max(i + 1024, rightReady)
            if consumed < 0 {                          // released by flush: its group never completed
                flushed += 1
                XCTAssertGreaterThan(rightReady, Int64(n))
                continue
            }
            XCTAssertEqual(consumed, expected, "vote \(i)")
            XCTAssertLessThanOrEqual(consumed, i + 1024 + Int64(est.voteLatency))
        }
        XCTAssertGreaterThan(flushed, 0, "the clip ends inside a group")
        XCTAssertLessThanOrEqual(flushed, 12)
        XCTAssertLessThanOrEqual(out.count, est.maxVotes(forBlockLength: n))
    }

    func testResetReproducesVotes() throws {
        let est = try LearnedEstimator(model: try smallV1Model())
        let sig = TestSignals.stereo(.chirp, count: 3000, delay: -3, seed: 4)
        let a = est.processAll(left: sig.left, right: sig.right, blockSize: 500)
        est.reset()
        XCTAssertEqual(est.samplesConsumed, 0)
        let b = est.processAll(left: sig.left, right: sig.right, blockSize: 777)
        XCTAssertFalse(a.isEmpty)
        XCTAssertTrue(a == b, "votes after reset differ")
    }

    func testArgmaxVotesAreTheBandArgmax() throws {
        let model = try smallV1Model()
        let est = try LearnedEstimator(model: model, options: .init(voteStride: 8, argmax: true))
        var expected: [Int64: Float] = [:]
        est.affinityObserver = { i, row in
            var best = 0
            for k in 1..<row.count where row[k] > row[best] { best = k }
            expected[i] = Float(best - 24)
        }
        let sig = TestSignals.stereo(.white, count: 2500, delay: 6, seed: 8)
        let votes = est.processAll(left: sig.left, right: sig.right, blockSize: 321)
        XCTAssertFalse(votes.isEmpty)
        for v in votes {
            XCTAssertEqual(v.delay, expected[v.start], "vote \(v.start)")
            XCTAssertEqual(v.delay, v.delay.rounded())
        }
        // The expectation votes of the same stream are sub-sample and stay inside the band.
        let soft = try LearnedEstimator(model: model).processAll(left: sig.left, right: sig.right)
        XCTAssertEqual(soft.map { $0.start }, votes.map { $0.start })
        XCTAssertTrue(soft.allSatisfy { abs($0.delay) <= 24 })
        XCTAssertTrue(soft.contains { $0.delay != $0.delay.rounded() })
    }

    func testDelayFromAffinities() {
        func d(_ a: [Float], argmax: Bool = false) -> Float { a.withUnsafeBufferPointer { LearnedEstimator.delay(affinities: $0, argmax: argmax) } }
        // One dominant entry at d = +2 (band of 2*3+1).
        XCTAssertEqual(d([0, 0, 0, 0, 0, 80, 0]), 2, accuracy: 1e-6)
        XCTAssertEqual(d([0, 0, 0, 0, 0, 80, 0], argmax: true), 2)
        // Symmetric band -> 0.
        XCTAssertEqual(d([1, 3, 2, 5, 2, 3, 1]), 0, accuracy: 1e-6)
        // Hand-computed: softmax([0, ln 3, 0]) = [0.2, 0.6, 0.2] with d = [-1, 0, 1] -> 0;
        // softmax([ln 2, 0, ln 6]) = [0.2, 0.1, 0.6]/0.9... -> (-2 + 6) / 9.
        XCTAssertEqual(d([log(2), 0, log(6)]), 4.0 / 9.0, accuracy: 1e-6)
        // Large affinities (tau = 0.05 makes |A| up to 20) must not overflow.
        XCTAssertEqual(d([20, 20, -20]), -0.5, accuracy: 1e-6)
        // Argmax ties go to the first (most negative) delay.
        XCTAssertEqual(d([1, 5, 5], argmax: true), 0)
    }

    func testOptionsOutOfRangeAreRejected() throws {
        let model = try smallV1Model()
        XCTAssertThrowsError(try LearnedEstimator(model: model, options: .init(voteStride: 0))) { e in
            XCTAssertTrue("\(e)".contains("vote stride 0"))
        }
        XCTAssertThrowsError(try LearnedEstimator(model: model, options: .init(maxDelay: 5000)))
        XCTAssertThrowsError(try LearnedEstimator(model: model, options: .init(maxBlock: 0)))
        XCTAssertEqual(try LearnedEstimator(model: model, options: .init(maxDelay: 10)).maxDelay, 10)
    }

    /// The shipped model recovers known delays of both signs on a clean synthetic clip.
    func testShippedModelRecoversKnownDelay() throws {
        let model = try EncoderModel(safetensorsBytes: [UInt8](try Data(contentsOf: try shippedModelURL())))
        let agg = VoteAggregator()
        for (kind, delay) in [(SignalKind.speechLike, 5.0), (.white, -7.0), (.speechLike, -12.0), (.white, 2.5)] {
            let sig = TestSignals.stereo(kind, count: 16000, delay: delay, snrDb: 30, seed: 21)
            let est = try LearnedEstimator(model: model)
            let votes = est.processAll(left: sig.left, right: sig.right, blockSize: 800).map { $0.delay }
            XCTAssertGreaterThan(votes.count, 1500)
            let r = votes.withUnsafeBufferPointer { agg.mode($0) }
            print("[learned shipped] \(kind) true delay \(delay): mode \(r.delay) (\(r.inliers)/\(r.count) inliers)")
            XCTAssertEqual(r.delay, delay, accuracy: 0.5, "\(kind) delay \(delay)")
        }
    }
}
