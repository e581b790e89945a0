// The learned encoder as a DelayEstimator: StreamingEncoder on each channel, band affinities
// at step 1 on the right, softmax at the model's tau, expectation (or argmax) per left window.

import COpenBLAS
import Foundation

/// Delay estimator driven by a learned streaming encoder (StereoCRW-style inference).
///
/// - The right channel is encoded at every window start (step 1); the left only at the vote
///   windows `s % voteStride == 0` (it computes one STFT column in `gcd(voteStride, hop)`).
/// - For a left window `i` the affinities `A(i, i+d) = <eL_i, eR_{i+d}> / tau`,
///   `d = -maxDelay ... maxDelay`, go through a softmax; the vote is the expectation
///   `sum_d p_d d` (sub-sample) or, with `argmax`, the best `d`.
///   Positive = right channel later.
/// - Only windows whose whole band lies inside the stream vote (`i >= maxDelay`); the vote for
///   window `i` comes out once the right window `i + maxDelay` is complete (`voteLatency`).
///
/// Votes are bit-identical however the stream is cut into blocks (every layer SGEMM of an
/// encoder has one fixed shape, docs/encoder-spec.md "Arithmetic of the Swift engine"). The
/// process sets OpenBLAS to one thread at start (`BLASRuntime.useOneThread()`).
public final class LearnedEstimator: EvidenceEstimator {
    /// Tunables of the learned method.
    public struct Options: Equatable, Sendable {
        /// Distance between left vote windows, samples (default 8).
        public var voteStride: Int
        /// Vote with the argmax of the band instead of the softmax expectation.
        public var argmax: Bool
        /// Most new columns run through the layers per step (rounded up to a whole number of
        /// column groups; each group is one SGEMM of fixed shape per layer); larger blocks are
        /// split. Input is fed to the encoders in chunks of `4 * maxBlock` samples.
        public var maxBlock: Int
        /// Band half-width in samples; `nil` = the model's `max_delay`.
        public var maxDelay: Int?
        /// Columns per layer SGEMM on the right (every-sample) channel, i.e. the N of each of
        /// its GEMMs and the size of its aligned column groups; votes wait up to
        /// `rightGroupColumns - 1` samples for their right group. The left channel uses 24.
        public var rightGroupColumns: Int

        /// Default distance between left vote windows.
        public static let defaultVoteStride = 8

        /// Options with the paper's defaults (expectation votes every 8 samples).
        public init(voteStride: Int = Options.defaultVoteStride, argmax: Bool = false, maxBlock: Int = 256, maxDelay: Int? = nil,
                    rightGroupColumns: Int = Options.defaultRightGroupColumns) {
            self.voteStride = voteStride
            self.argmax = argmax
            self.maxBlock = maxBlock
            self.maxDelay = maxDelay
            self.rightGroupColumns = rightGroupColumns
        }

        /// Default `rightGroupColumns`: 96. Every SGEMM call has OpenBLAS pack the layer's
        /// weights, so narrow calls cost more per column: with the Haswell (AVX2) kernels the
        /// engine measured 24 % slower at 24 columns than with the old variable-width calls,
        /// 4 % slower at 96 (`tded bench --learned-right-group N`; AVX-512 kernels: 4 % and
        /// 1 %). Votes wait up to 95 samples (6 ms) for their right group.
        public static let defaultRightGroupColumns = 96
    }

    /// Why the options do not fit the model.
    public struct ConfigurationError: Error, CustomStringConvertible {
        /// One line naming the option and its allowed range.
        public let description: String
    }

    /// Method name in output lines.
    public let name = "learned"
    /// The encoder.
    public let model: EncoderModel
    /// The options it was built with.
    public let options: Options
    /// The model's window (1024 samples for the shipped model).
    public var windowLength: Int { model.window }
    /// Left-channel vote stride.
    public var voteStride: Int { options.voteStride }
    /// Band half-width in samples (`options.maxDelay` or the model's `max_delay`).
    public let maxDelay: Int
    /// `maxDelay` (the right window `i + maxDelay` must be complete) plus up to
    /// `rightGroupColumns - 1` samples: the right encoder runs its layers on whole aligned
    /// groups of `rightGroupColumns` columns (no provisional recomputation on the every-sample
    /// channel).
    public var voteLatency: Int { maxDelay + options.rightGroupColumns - 1 }
    /// Samples per channel consumed since creation or `reset()`.
    public var samplesConsumed: Int64 { rightEncoder.samplesConsumed }

    /// Per-vote hook for diagnostics and tests: window start and its `2*maxDelay+1` affinities
    /// (`A(i, i+d)` for `d = -maxDelay ... maxDelay`). Nil in normal use.
    public var affinityObserver: ((Int64, UnsafeBufferPointer<Float>) -> Void)?

    /// Evidence per vote: the band's softmax probabilities `p_d`, `d = -maxDelay ... maxDelay`
    /// (`2 * maxDelay + 1` floats, summing to 1).
    public var evidenceLength: Int { 2 * maxDelay + 1 }
    /// See `EvidenceEstimator`.
    public var evidenceOutput: UnsafeMutablePointer<Float>?

    /// Encoder of the left channel (vote windows only).
    public let leftEncoder: StreamingEncoder
    /// Encoder of the right channel (every window start).
    public let rightEncoder: StreamingEncoder

    private var nextVote: Int64
    private let firstVote: Int64
    private let chunk: Int
    private let band: UnsafeMutablePointer<Float>
    private let invTau: Float

    /// Creates the estimator. Throws when the options are out of range for the model.
    public init(model: EncoderModel, options: Options = Options()) throws {
        let D = options.maxDelay ?? model.maxDelay
        guard options.voteStride >= 1, options.voteStride <= model.window else {
            throw ConfigurationError(description: "learned: vote stride \(options.voteStride) must be in 1...\(model.window)")
        }
        guard D >= 0, D <= model.window else {
            throw ConfigurationError(description: "learned: max delay \(D) samples must be in 0...\(model.window)")
        }
        guard options.maxBlock >= 1, options.maxBlock <= 4096 else {
            throw ConfigurationError(description: "learned: block size \(options.maxBlock) must be in 1...4096")
        }
        guard options.rightGroupColumns >= 1, options.rightGroupColumns <= 1024 else {
            throw ConfigurationError(description: "learned: right group of \(options.rightGroupColumns) columns must be in 1...1024")
        }
        self.model = model
        self.options = options
        self.maxDelay = D
        let C = 4 * options.maxBlock, k = options.voteStride, Q = options.rightGroupColumns
        chunk = C
        // Embedding rings: one chunk of C samples, the band, the provisional group, a margin.
        let QL = StreamingEncoder.defaultGroupColumns
        rightEncoder = StreamingEncoder(model: model, windowStride: 1, maxBlock: options.maxBlock,
                                        embeddingCapacity: C + 2 * D + k + 2 * Q + 8, groupColumns: Q)
        leftEncoder = StreamingEncoder(model: model, windowStride: k, maxBlock: options.maxBlock,
                                       embeddingCapacity: (C + D) / k + 2 * QL + 8, groupColumns: QL)
        // The right channel carries ~8/9 of the work: no provisional groups there (votes wait
        // up to Q - 1 samples). The left computes its incomplete group provisionally, but only
        // when a vote whose right band is ready waits for it (else votes would wait up to 23
        // left columns = 184 samples at stride 8).
        rightEncoder.eagerTail = false
        leftEncoder.eagerTail = false  // flushed only when a vote waits for it (emitReady)
        firstVote = Int64((D + k - 1) / k * k)
        nextVote = firstVote
        band = .allocate(capacity: 2 * D + 1)
        invTau = 1 / model.tau
    }

    deinit { band.deallocate() }

    /// Votes wait at most `voteLatency - maxDelay` samples for their right group, so a block
    /// can release those of the previous samples too.
    public func maxVotes(forBlockLength n: Int) -> Int {
        (n + options.rightGroupColumns) / options.voteStride + 2
    }

    /// Forgets all state; the next sample is position 0 again.
    public func reset() {
        leftEncoder.reset()
        rightEncoder.reset()
        nextVote = firstVote
    }

    /// Consumes equal-length planar blocks; writes the votes that became available (see the
    /// type's documentation and `DelayEstimator`); returns how many.
    public func process(left: UnsafeBufferPointer<Float>, right: UnsafeBufferPointer<Float>,
                        votes: UnsafeMutableBufferPointer<Vote>) -> Int {
        precondition(left.count == right.count, "left and right blocks differ in length")
        precondition(votes.count >= maxVotes(forBlockLength: left.count), "vote storage too small")
        guard let lb = left.baseAddress, let rb = right.baseAddress else { return 0 }
        let C = chunk
        var written = 0
        var i = 0
        while i < left.count {
            let n = min(C, left.count - i)
            rightEncoder.push(UnsafeBufferPointer(start: rb + i, count: n))
            leftEncoder.push(UnsafeBufferPointer(start: lb + i, count: n))
            i += n
            written += emitReady(votes, from: written)
        }
        return written
    }

    /// End of stream: computes the encoders' incomplete column groups and writes the votes
    /// that were waiting only for them (at most `maxVotes(forBlockLength: 0)`). Processing
    /// may continue afterwards.
    public func flush(votes: UnsafeMutableBufferPointer<Vote>) -> Int {
        rightEncoder.flush()
        leftEncoder.flush()
        return emitReady(votes, from: 0)
    }

    private func emitReady(_ votes: UnsafeMutableBufferPointer<Vote>, from start: Int) -> Int {
        let D = Int64(maxDelay)
        var written = start
        var flushed = false
        while nextVote + D < rightEncoder.windowsEnd {
            if !leftEncoder.hasEmbedding(at: nextVote) {
                // The right band is ready but the left window sits in the left encoder's
                // incomplete group: compute that group provisionally (once per call).
                if flushed { break }
                leftEncoder.flush()
                flushed = true
                if !leftEncoder.hasEmbedding(at: nextVote) { break }
            }
            precondition(written < votes.count, "vote storage too small")
            votes[written] = Vote(start: nextVote, delay: vote(at: nextVote))
            if let ev = evidenceOutput { probabilities(into: ev + written * (2 * maxDelay + 1)) }
            written += 1
            nextVote += Int64(options.voteStride)
        }
        return written - start
    }

    /// Band affinities and the vote of left window `i` (both encoders must hold what it needs).
    @inline(__always) private func vote(at i: Int64) -> Float {
        let D = maxDelay, dim = model.embeddingDim
        let eL = leftEncoder.embedding(at: i)
        let nv = dim / 8
        let rl = UnsafeRawPointer(eL)
        for k in 0...(2 * D) {
            let eR = rightEncoder.embedding(at: i + Int64(k - D))
            // 8 lanes at a time (explicit SIMD: the Engine builds for baseline x86-64), fixed order.
            let rr = UnsafeRawPointer(eR)
            var acc8 = SIMD8<Float>(repeating: 0)
            for v in 0..<nv {
                acc8 += rl.loadUnaligned(fromByteOffset: 32 * v, as: SIMD8<Float>.self)
                    * rr.loadUnaligned(fromByteOffset: 32 * v, as: SIMD8<Float>.self)
            }
            var acc = acc8.sum()
            for c in (8 * nv)..<dim { acc += eL[c] * eR[c] }
            band[k] = acc * invTau
        }
        let row = UnsafeBufferPointer(start: band, count: 2 * D + 1)
        affinityObserver?(i, row)
        return LearnedEstimator.delay(affinities: row, argmax: options.argmax)
    }

    /// The vote of one band of affinities `A(i, i+d)`, `d = -D ... D` (count `2D+1`):
    /// softmax expectation `sum_d p_d d`, or the `d` of the largest affinity (first on ties).
    public static func delay(affinities a: UnsafeBufferPointer<Float>, argmax: Bool = false) -> Float {
        let n = a.count
        precondition(n % 2 == 1, "a band has 2*maxDelay+1 entries")
        let D = n / 2
        var best = 0
        for k in 1..<n where a[k] > a[best] { best = k }
        if argmax { return Float(best - D) }
        let m = Double(a[best])
        var z = 0.0, s = 0.0
        for k in 0..<n {
            let p = exp(Double(a[k]) - m)
            z += p
            s += p * Double(k - D)
        }
        return Float(s / z)
    }

    /// Softmax of the current band (`band`, scaled by 1/tau) into `p`.
    private func probabilities(into p: UnsafeMutablePointer<Float>) {
        let n = 2 * maxDelay + 1
        var m = band[0]
        for k in 1..<n where band[k] > m { m = band[k] }
        var z = 0.0
        for k in 0..<n { let e = exp(Double(band[k] - m)); p[k] = Float(e); z += e }
        let g = Float(1 / z)
        for k in 0..<n { p[k] *= g }
    }

    /// The delay of pooled band probabilities (`evidenceLength` floats, a weighted sum of
    /// per-window distributions): the most probable delay, refined by a parabola through the
    /// logarithms of it and its two neighbours (exact for a Gaussian-shaped peak).
    ///
    /// Confidence: the pooled probability mass within one sample of that delay.
    public func resolve(pooled q: UnsafePointer<Float>, windows: Int) -> PooledEstimate? {
        let n = 2 * maxDelay + 1
        var total = 0.0
        var best = 0
        for k in 0..<n {
            total += Double(q[k])
            if q[k] > q[best] { best = k }
        }
        guard total > 0, total.isFinite, q[best] > 0 else { return nil }
        var off = 0.0
        if best > 0 && best < n - 1 && q[best - 1] > 0 && q[best + 1] > 0 {
            off = parabolicVertex(log(Double(q[best - 1])), log(Double(q[best])), log(Double(q[best + 1])))
        }
        var mass = Double(q[best])
        if best > 0 { mass += Double(q[best - 1]) }
        if best < n - 1 { mass += Double(q[best + 1]) }
        return PooledEstimate(delay: Double(best - maxDelay) + off, confidence: min(1, mass / total))
    }
}
