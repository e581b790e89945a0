// The learned encoder's forward pass, computed incrementally over a mono stream
// (docs/encoder-spec.md). Each STFT column goes through the layers exactly once; every layer
// keeps the last (k-1)*dilation positions of its input in fixed storage; blocks of new columns
// go through each layer as one SGEMM (taps gathered im2col-style); window embeddings are pooled
// from the cached last-layer outputs.

import COpenBLAS
import Foundation

/// The encoder run incrementally over one mono stream.
///
/// Push samples in blocks of any size; the encoder computes the STFT column of every frame
/// start on its column lattice (`t % columnStride == columnPhase`) once, runs blocks of up to
/// `maxBlock` new columns through every layer (one fixed-shape SGEMM per group of
/// `groupColumns` columns and layer, taps gathered im2col-style), and forms
/// the L2-normalised embedding of every window start `s` with `s % windowStride == 0` as soon
/// as its last column is in. The newest `embeddingCapacity` window embeddings are kept.
///
/// Blocks are scheduled by absolute column index in groups of `groupColumns` (24 by default);
/// the newest, incomplete group is computed provisionally (padded to a full group) so nothing
/// waits, and computed again once complete. Every SGEMM of a layer has the same shape, so
/// results are bit-identical for any split of the stream into pushes and any `maxBlock`,
/// whichever kernel OpenBLAS runs (docs/encoder-spec.md, "Arithmetic of the Swift engine").
///
/// Column lattice: all dilations are multiples of `hop`, so positions of different phases
/// `t mod hop` never interact. A stream that needs windows every `windowStride` samples only
/// computes columns with `t ≡ R (mod gcd(windowStride, hop))`: every column for
/// `windowStride = 1` (the right channel), one in 8 for `windowStride = 8` (the left channel).
///
/// The process sets OpenBLAS to one thread at start (`BLASRuntime.useOneThread()`); the
/// encoder does not change process-wide settings.
///
/// After `init` no call allocates.
public final class StreamingEncoder {
    /// The model.
    public let model: EncoderModel
    /// Windows start at multiples of this.
    public let windowStride: Int
    /// Distance in samples between computed columns, `gcd(windowStride, hop)`.
    public let columnStride: Int
    /// Phase of the computed columns, `R mod columnStride`.
    public let columnPhase: Int
    /// Largest number of columns run through the layers at once (GEMM width).
    public let maxBlock: Int
    /// Number of window embeddings kept.
    public let embeddingCapacity: Int
    /// Embedding length.
    public let dim: Int

    /// Samples consumed since creation or `reset()`.
    public private(set) var samplesConsumed: Int64 = 0
    /// One past the newest window start with an embedding (0 when none): every window start
    /// `s` on the stride lattice with `oldestEmbedding <= s < windowsEnd` is available.
    public private(set) var windowsEnd: Int64 = 0

    /// Cumulative thread-CPU nanoseconds spent per layer (GEMMs, bias, activation) and, at
    /// index `layers.count`, in features + pooling; only accumulated when `profile` is true.
    public private(set) var layerNanos: [UInt64]
    /// Columns run through the layers so far, counting provisional recomputation (for the
    /// benchmark's per-column figures).
    public private(set) var columnsProcessed: Int64 = 0
    /// Columns whose group is complete and committed (a multiple of `groupColumns`).
    private var committed: Int64 = 0
    /// Columns whose features are in layer 0's input buffer (`>= committed`).
    private var featurized: Int64 = 0
    /// Turn on per-layer timing (adds two clock reads per layer and block).
    public var profile = false
    /// Compute the newest, incomplete column group provisionally on every push (its windows
    /// come out with no wait, at the cost of computing those columns again once the group is
    /// complete). When false, windows wait until their group of `groupColumns` columns is
    /// complete (`columnStride * (groupColumns - 1)` samples at most) unless `flush()` is called.
    public var eagerTail = true

    private let columns: STFTColumns
    private let kernels: [LayerKernel]
    /// Input buffers of every layer; `buffers[L]` holds the last layer's outputs.
    private let buffers: [ColumnBuffer]
    private let embeddings: UnsafeMutablePointer<Float>
    /// Columns per layer SGEMM and per aligned group (every SGEMM has this N).
    public let groupColumns: Int
    private let R: Int
    private let M: Int
    private let poolStep: Int  // hop / columnStride: buffer columns between pooled outputs
    private let bins: Int
    private let phatBeta: Float
    private let columnNorm: Bool
    private let invM: Float

    /// Creates the encoder for one channel.
    /// - Parameters:
    ///   - windowStride: window starts at multiples of it (1 = every sample).
    ///   - maxBlock: columns per layer GEMM (the block width), at least 1.
    ///   - embeddingCapacity: how many of the newest window embeddings stay readable.
    ///   - groupColumns: columns per aligned group, the N of every layer SGEMM (24 by default;
    ///     larger groups amortise OpenBLAS's per-call packing of the weights, at the cost of a
    ///     longer wait for a complete group or more padding in provisional groups).
    public init(model: EncoderModel, windowStride: Int = 1, maxBlock: Int = 256,
                embeddingCapacity: Int = 512, groupColumns: Int = 24) {
        precondition(windowStride >= 1 && maxBlock >= 1 && maxBlock <= 4096 && embeddingCapacity >= 1)
        precondition(groupColumns >= 1 && groupColumns <= 1024)
        self.model = model
        self.groupColumns = groupColumns
        self.windowStride = windowStride
        let maxBlock = (maxBlock + groupColumns - 1) / groupColumns * groupColumns
        self.maxBlock = maxBlock
        self.embeddingCapacity = embeddingCapacity
        var a = windowStride, b = model.hop
        while b != 0 { (a, b) = (b, a % b) }
        columnStride = a
        R = model.receptiveField
        M = model.poolCount
        columnPhase = R % columnStride
        dim = model.embeddingDim
        poolStep = model.hop / columnStride
        bins = model.nFFT / 2
        phatBeta = model.phatBeta
        columnNorm = model.columnNorm
        invM = 1 / Float(M)
        columns = STFTColumns(capacity: maxBlock + 1, nFFT: model.nFFT, stride: columnStride,
                              phase: columnPhase)
        // Columns written at or after a buffer's `end` before a commit: pending features (less
        // than one group) plus one push chunk of new columns, rounded up to whole groups.
        let room = maxBlock + 2 * groupColumns
        var ks: [LayerKernel] = []
        var bs: [ColumnBuffer] = []
        for l in model.layers {
            let dd = l.dilation / columnStride
            ks.append(LayerKernel(l, dilationColumns: dd, group: groupColumns))
            bs.append(ColumnBuffer(channels: l.inChannels, history: (l.kernel - 1) * dd, room: room))
        }
        bs.append(ColumnBuffer(channels: dim, history: (M - 1) * poolStep, room: room))
        kernels = ks
        buffers = bs
        embeddings = alignedFloats(embeddingCapacity * dim)
        layerNanos = [UInt64](repeating: 0, count: model.layers.count + 1)
    }

    deinit { embeddings.deallocate() }

    /// Forgets everything; the next sample is position 0 again.
    public func reset() {
        columns.reset()
        for b in buffers { b.reset() }
        samplesConsumed = 0
        windowsEnd = 0
        columnsProcessed = 0
        committed = 0
        featurized = 0
        for i in layerNanos.indices { layerNanos[i] = 0 }
    }

    /// Oldest window start whose embedding is still kept.
    public var oldestEmbedding: Int64 {
        max(0, windowsEnd - Int64(embeddingCapacity * windowStride))
    }

    /// Whether the embedding of window start `s` is available.
    @inline(__always) public func hasEmbedding(at s: Int64) -> Bool {
        s >= oldestEmbedding && s < windowsEnd && s % Int64(windowStride) == 0
    }

    /// The L2-normalised embedding (`dim` floats) of window start `s`; requires
    /// `hasEmbedding(at: s)`. Valid until the next `push`/`reset`.
    @inline(__always) public func embedding(at s: Int64) -> UnsafePointer<Float> {
        precondition(hasEmbedding(at: s), "embedding of window \(s) is not available")
        return UnsafePointer(embeddings + slot(s))
    }

    @inline(__always) private func slot(_ s: Int64) -> Int {
        Int((s / Int64(windowStride)) % Int64(embeddingCapacity)) * dim
    }

    /// Largest number of new window embeddings one `push` of `n` samples can produce.
    public func maxNewWindows(forBlockLength n: Int) -> Int { n / windowStride + 1 }

    /// Default columns per aligned GEMM group (24). With `eagerTail` off, a window waits at most
    /// `(groupColumns - 1) * columnStride` samples after its last column for its group.
    public static var defaultGroupColumns: Int { gemmQuantum }

    /// Consumes samples; computes all newly complete columns, layers and window embeddings.
    /// Embeddings older than `embeddingCapacity` windows are overwritten, so a consumer that
    /// needs every window must read them between pushes of at most
    /// `embeddingCapacity * windowStride` samples.
    public func push(_ samples: UnsafeBufferPointer<Float>) {
        guard let base = samples.baseAddress else { return }
        let chunk = maxBlock * columnStride  // at most maxBlock new columns per chunk
        let Q = Int64(groupColumns)
        var i = 0
        while i < samples.count {
            let n = min(chunk, samples.count - i)
            columns.push(UnsafeBufferPointer(start: base + i, count: n))
            samplesConsumed += Int64(n)
            i += n
            let avail = columns.columnsComputed
            guard avail > featurized else { continue }
            let t0 = profile ? now() : 0
            // Features of the new columns straight into layer 0's input, after the pending ones.
            let in0 = buffers[0]
            let pending = Int(featurized - committed)
            in0.reserve(pending + Int(avail - featurized) + groupColumns, keep: pending)
            for u in featurized..<avail {
                let t = Int64(columnPhase) + u * Int64(columnStride)
                EncoderFeatures.compute(re: columns.real(at: t), im: columns.imag(at: t), bins: bins,
                                        phatBeta: phatBeta, columnNorm: columnNorm,
                                        out: in0.column(in0.end + Int(u - committed)))
            }
            featurized = avail
            if profile { layerNanos[kernels.count] &+= now() &- t0 }
            // Complete groups, committed; then the incomplete last group, provisionally.
            while featurized - committed >= Q {
                let w = min(maxBlock, Int((featurized - committed) / Q * Q))
                runLayers(width: w, valid: w, commit: true)
            }
            if eagerTail && featurized > committed {
                runLayers(width: groupColumns, valid: Int(featurized - committed), commit: false)
            }
        }
    }

    /// Computes the newest, incomplete column group now (provisionally: it is computed again,
    /// with identical results, once complete), so every window whose samples have all arrived
    /// has its embedding. For the end of a stream, or with `eagerTail` off.
    public func flush() {
        if featurized > committed {
            runLayers(width: groupColumns, valid: Int(featurized - committed), commit: false)
        }
    }

    /// Array convenience for `push(_:)`.
    public func push(_ samples: [Float]) { samples.withUnsafeBufferPointer { push($0) } }

    /// Profiling clock: CPU time of the calling thread (so time-slicing by other processes on a
    /// shared machine does not count), in ns.
    @inline(__always) private func now() -> UInt64 { ThreadCPUClock.nanoseconds() }

    /// Runs `width` columns starting at column `committed` through every layer (`valid` of
    /// them are real, the rest padding), pools the windows they complete, and commits them if
    /// asked (`valid == width` then).
    private func runLayers(width w: Int, valid: Int, commit: Bool) {
        var tPrev = profile ? now() : 0
        for l in 1..<buffers.count { buffers[l].reserve(w) }
        for (l, k) in kernels.enumerated() {
            let xin = buffers[l], yout = buffers[l + 1]
            k.apply(x: xin.column(xin.end), y: yout.column(yout.end), n: w)
            if profile { let t = now(); layerNanos[l] &+= t &- tPrev; tPrev = t }
        }
        // Pool window embeddings from the cached last-layer outputs.
        let out = buffers[kernels.count]
        let span = Int64(R + model.hop * (M - 1))
        for q in 0..<valid {
            let t = Int64(columnPhase) + (committed + Int64(q)) * Int64(columnStride)
            let s = t - span
            guard s >= 0, s % Int64(windowStride) == 0 else { continue }
            pool(newest: out.column(out.end + q), into: embeddings + slot(s))
            if s >= windowsEnd { windowsEnd = s + 1 }
        }
        columnsProcessed += Int64(w)
        if commit {
            for b in buffers { b.end += w }
            committed += Int64(w)
        }
        if profile { layerNanos[kernels.count] &+= now() &- tPrev }
    }

    /// Mean of the `M` outputs ending at `newest` (stride `poolStep` columns), L2-normalised.
    @inline(__always) private func pool(newest: UnsafePointer<Float>, into e: UnsafeMutablePointer<Float>) {
        let D = dim
        let step = poolStep * D
        e.update(from: newest - (M - 1) * step, count: D)
        var p = newest - (M - 2) * step
        for _ in 1..<max(M, 1) {
            for c in 0..<D { e[c] += p[c] }
            p += step
        }
        var ss: Float = 0
        for c in 0..<D { e[c] *= invM; ss += e[c] * e[c] }
        let g = 1 / max(ss.squareRoot(), 1e-12)
        for c in 0..<D { e[c] *= g }
    }
}
