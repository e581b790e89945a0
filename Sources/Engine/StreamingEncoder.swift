// The learned encoder's forward pass, computed incrementally over a mono stream
// (docs/encoder-spec.md). Each STFT column goes through the layers exactly once; every layer
// keeps the last (k-1)*dilation positions of its input in fixed storage; blocks of new columns
// go through each layer as one SGEMM (taps gathered im2col-style); window embeddings are pooled
// from the cached last-layer outputs.

import COpenBLAS
import Foundation

/// Feature vector of one STFT column (spec "Signal and columns"): partial PHAT, optional
/// column RMS normalisation, then `[Re Y_0 ..< Re Y_{B-1}, Im Y_0 ..< Im Y_{B-1}]`.
public enum EncoderFeatures {
    /// Writes `2 * bins` features for the column (`re`, `im`: `bins` values each) into `out`.
    /// Vectorised 8 bins at a time (explicit SIMD: the Engine builds for baseline x86-64).
    @inline(__always)
    public static func compute(re: UnsafePointer<Float>, im: UnsafePointer<Float>, bins: Int,
                               phatBeta: Float, columnNorm: Bool, out: UnsafeMutablePointer<Float>) {
        typealias V = SIMD8<Float>
        let oRe = out, oIm = out + bins
        let rr = UnsafeRawPointer(re), ri = UnsafeRawPointer(im)
        let wr = UnsafeMutableRawPointer(oRe), wi = UnsafeMutableRawPointer(oIm)
        let nv = bins / 8
        let eps = V(repeating: 1e-6)
        @inline(__always) func gain(_ a: Float, _ b: Float) -> Float {
            let mag = (a * a + b * b).squareRoot() + 1e-6
            if phatBeta == 0.5 { return 1 / mag.squareRoot() }
            if phatBeta == 1 { return 1 / mag }
            return Float(exp(-Double(phatBeta) * log(Double(mag))))
        }
        if phatBeta == 0 {
            oRe.update(from: re, count: bins)
            oIm.update(from: im, count: bins)
        } else if phatBeta == 0.5 || phatBeta == 1 {
            let half = phatBeta == 0.5
            for v in 0..<nv {
                let a = rr.loadUnaligned(fromByteOffset: 32 * v, as: V.self)
                let b = ri.loadUnaligned(fromByteOffset: 32 * v, as: V.self)
                let mag = (a * a + b * b).squareRoot() + eps
                let g = 1 / (half ? mag.squareRoot() : mag)
                wr.storeBytes(of: a * g, toByteOffset: 32 * v, as: V.self)
                wi.storeBytes(of: b * g, toByteOffset: 32 * v, as: V.self)
            }
            for k in (8 * nv)..<bins {
                let g = gain(re[k], im[k])
                oRe[k] = re[k] * g; oIm[k] = im[k] * g
            }
        } else {
            for k in 0..<bins {
                let g = gain(re[k], im[k])
                oRe[k] = re[k] * g; oIm[k] = im[k] * g
            }
        }
        if columnNorm {
            var acc = V(repeating: 0)
            for v in 0..<nv {
                let a = wr.loadUnaligned(fromByteOffset: 32 * v, as: V.self)
                let b = wi.loadUnaligned(fromByteOffset: 32 * v, as: V.self)
                acc += a * a + b * b
            }
            var p = acc.sum()
            for k in (8 * nv)..<bins { p += oRe[k] * oRe[k] + oIm[k] * oIm[k] }
            let g = 1 / (p / Float(bins) + 1e-8).squareRoot()
            let gv = V(repeating: g)
            for v in 0..<nv {
                wr.storeBytes(of: wr.loadUnaligned(fromByteOffset: 32 * v, as: V.self) * gv, toByteOffset: 32 * v, as: V.self)
                wi.storeBytes(of: wi.loadUnaligned(fromByteOffset: 32 * v, as: V.self) * gv, toByteOffset: 32 * v, as: V.self)
            }
            for k in (8 * nv)..<bins { oRe[k] *= g; oIm[k] *= g }
        }
    }
}

/// Default columns per GEMM group (`StreamingEncoder.groupColumns`), the N of every SGEMM the
/// encoder makes. Layers run on groups of `groupColumns` columns aligned to absolute column
/// indices (a last, incomplete group is computed provisionally with padding and recomputed when
/// it completes), and every SGEMM of a layer has the same shape
/// `[outC x groupColumns] = [outC x kernel*inC] * [kernel*inC x groupColumns]` whatever the block
/// sizes. OpenBLAS picks its code path (small-matrix kernel or blocked kernel, blocking, thread
/// split) from the shape alone, so with one shape per layer each column always goes through the
/// same arithmetic: results are bit-identical however the stream is split into blocks, under
/// every kernel OpenBLAS may pick (docs/encoder-spec.md, "Arithmetic of the Swift engine").
/// One SGEMM per block of any multiple of the group broke this on the SkylakeX/Cooperlake
/// kernels (small-matrix kernel up to M*N*K = 1e6, blocked kernel above).
let gemmQuantum = 24

/// 64-byte aligned, zero-initialised float storage owned by the encoder.
@inline(__always)
private func alignedFloats(_ count: Int) -> UnsafeMutablePointer<Float> {
    let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * 4, alignment: 64)
    let p = raw.bindMemory(to: Float.self, capacity: max(count, 1))
    p.initialize(repeating: 0, count: max(count, 1))
    return p
}

/// Column-major `[channels x capacity]` storage of a sequence. Column `end` holds the first
/// column not yet committed; the `history` columns before it are kept when the buffer
/// compacts (a sliding window with lazy compaction: one memmove per `capacity - history -
/// room` columns, never per block).
private final class ColumnBuffer {
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

/// One layer's weights as a column-major `[out x (kernel * in)]` matrix (tap-major columns:
/// K index `j * in + i` holds `W[:, i, j]`) and its bias.
private final class LayerKernel {
    let inC: Int, outC: Int, kernel: Int, dilation: Int, relu: Bool
    /// `outC * inC * kernel`, column-major (lda = outC).
    let weights: UnsafeMutablePointer<Float>
    let bias: UnsafeMutablePointer<Float>
    /// Columns per SGEMM (the N of every call).
    let group: Int
    /// im2col scratch of one group for kernels wider than 1: `[kernel * in x group]`.
    let gather: UnsafeMutablePointer<Float>

    /// `dilationColumns`: dilation in units of the stream's column stride; `group`: columns per
    /// SGEMM.
    init(_ l: EncoderLayer, dilationColumns: Int, group: Int) {
        self.group = group
        inC = l.inChannels; outC = l.outChannels; kernel = l.kernel; dilation = dilationColumns
        relu = l.activation == .relu
        weights = alignedFloats(outC * inC * kernel)
        bias = alignedFloats(outC)
        gather = alignedFloats(kernel > 1 ? kernel * inC * group : 1)
        for j in 0..<kernel {
            for i in 0..<inC {
                let col = weights + (j * inC + i) * outC
                for o in 0..<outC { col[o] = l.weight[(o * inC + i) * kernel + j] }
            }
        }
        for o in 0..<outC { bias[o] = l.bias[o] }
    }
    deinit { weights.deallocate(); bias.deallocate(); gather.deallocate() }

    /// `y[:, q] = act(b + sum_j W_j x[:, q - (k-1-j)*dilation])` for `q` in `0 ..< n` (`n` a
    /// multiple of `group`), where `x` points at the input column of `q = 0` (with its
    /// history before it) and `y` at the output column of `q = 0`; both column-major with their
    /// channel counts as leading dimension.
    /// One SGEMM per group of `group` columns, always of the same shape (the encoder's
    /// invariant, see `gemmQuantum`): the taps of each column are gathered next to each other
    /// (im2col), so the GEMM's inner dimension is `kernel * in`. A kernel-1 layer reads its
    /// input columns in place (operand addresses do not change the arithmetic: checked by
    /// `StreamingEncoderTests.testSgemmColumnsIgnoreOperandAlignmentAndNeighbours`).
    @inline(__always)
    func apply(x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, n: Int) {
        precondition(n % group == 0)
        let K = kernel * inC, N = group
        var g = 0
        while g < n {
            let xg = x + g * inC, yg = y + g * outC
            let xs: UnsafePointer<Float>
            if kernel == 1 {
                xs = xg
            } else {
                for q in 0..<N {
                    let dst = gather + q * K
                    for j in 0..<kernel {
                        (dst + j * inC).update(from: xg + (q - (kernel - 1 - j) * dilation) * inC, count: inC)
                    }
                }
                xs = UnsafePointer(gather)
            }
            cblas_sgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, Int32(outC), Int32(N), Int32(K), 1,
                        weights, Int32(outC), xs, Int32(K), 0, yg, Int32(outC))
            // Bias and activation in one pass (unconditional stores so it vectorises).
            let b = UnsafePointer(bias)
            if relu {
                for q in 0..<N {
                    let yc = yg + q * outC
                    for o in 0..<outC { let v = yc[o] + b[o]; yc[o] = v > 0 ? v : 0 }
                }
            } else {
                for q in 0..<N {
                    let yc = yg + q * outC
                    for o in 0..<outC { yc[o] += b[o] }
                }
            }
            g += N
        }
    }
}

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
    @inline(__always) private func now() -> UInt64 { StreamingEncoder.threadCPUNanos() }

    /// CPU time consumed by the calling thread, ns.
    public static func threadCPUNanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }

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

    // MARK: - From-scratch reference

    /// The embedding of the window starting at `start` in `samples`, computed from scratch
    /// (its own FFTs and one layer pass over the window's columns, nothing cached or shared).
    /// Used by tests to check the incremental path; allocates. See `FromScratchEncoder` to
    /// evaluate many windows of one model.
    public static func windowEmbeddingFromScratch(model: EncoderModel, samples: UnsafeBufferPointer<Float>,
                                                  start: Int) -> [Float] {
        FromScratchEncoder(model: model).embedding(samples: samples, start: start)
    }
}

/// Window embeddings computed one window at a time from scratch, exactly as the spec reads:
/// the window's own STFT columns (on the phase of its start), every layer as a valid dilated
/// convolution over them, the mean of the `M` last-layer outputs, L2 normalisation. Shares no
/// state between windows; the test reference for `StreamingEncoder`. Allocates.
public final class FromScratchEncoder {
    /// The model.
    public let model: EncoderModel
    /// Per layer, per tap: `W[:, :, j]` column-major `[out x in]`.
    private let taps: [[[Float]]]

    /// Prepares the per-tap weight matrices once.
    public init(model: EncoderModel) {
        self.model = model
        taps = model.layers.map { l in
            (0..<l.kernel).map { j in
                var wj = [Float](repeating: 0, count: l.outChannels * l.inChannels)
                for i in 0..<l.inChannels { for o in 0..<l.outChannels { wj[o + i * l.outChannels] = l.w(o, i, j) } }
                return wj
            }
        }
    }

    /// The L2-normalised embedding of the window `[start, start + window)` of `samples`.
    public func embedding(samples: UnsafeBufferPointer<Float>, start: Int) -> [Float] {
        precondition(start >= 0 && start + model.window <= samples.count)
        let hop = model.hop, nF = model.nFFT, bins = nF / 2
        // Only the phase of `start` matters: columns t = start + hop*q.
        let Q = (model.window - nF) / hop + 1
        let fft = ForwardRealFFT(size: nF)
        let w = UnsafeMutablePointer<Float>.allocate(capacity: nF)
        defer { w.deallocate() }
        STFTColumns.fillPeriodicHann(w, count: nF)
        var h = [Float](repeating: 0, count: Q * nF)
        var re = [Float](repeating: 0, count: bins), im = re
        for q in 0..<Q {
            let f = samples.baseAddress! + start + hop * q
            for j in 0..<nF { fft.input[j] = f[j] * w[j] }
            fft.execute()
            for b in 0..<bins { re[b] = fft.output[2 * b]; im[b] = fft.output[2 * b + 1] }
            h.withUnsafeMutableBufferPointer { hp in
                EncoderFeatures.compute(re: re, im: im, bins: bins, phatBeta: model.phatBeta,
                                        columnNorm: model.columnNorm, out: hp.baseAddress! + q * nF)
            }
        }
        // Valid convolutions in the phase domain (dilation d / hop).
        var cur = h, curC = nF, len = Q
        for (li, l) in model.layers.enumerated() {
            let dd = l.dilation / hop
            let outLen = len - (l.kernel - 1) * dd
            precondition(outLen >= 1)
            var y = [Float](repeating: 0, count: outLen * l.outChannels)
            for q in 0..<outLen { for o in 0..<l.outChannels { y[q * l.outChannels + o] = l.bias[o] } }
            cur.withUnsafeBufferPointer { cp in
                for j in 0..<l.kernel {
                    cblas_sgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, Int32(l.outChannels), Int32(outLen),
                                Int32(curC), 1, taps[li][j], Int32(l.outChannels),
                                cp.baseAddress! + j * dd * curC, Int32(curC), 1, &y, Int32(l.outChannels))
                }
            }
            if l.activation == .relu { for i in y.indices where y[i] < 0 { y[i] = 0 } }
            cur = y; curC = l.outChannels; len = outLen
        }
        // Output index 0 <-> position start + R; pool M of them.
        let M = model.poolCount, D = curC
        precondition(len >= M)
        var e = [Double](repeating: 0, count: D)
        for m in 0..<M { for c in 0..<D { e[c] += Double(cur[m * D + c]) } }
        var ss = 0.0
        for c in 0..<D { e[c] /= Double(M); ss += e[c] * e[c] }
        let g = 1 / max(ss.squareRoot(), 1e-12)
        return e.map { Float($0 * g) }
    }
}
