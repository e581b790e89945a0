// LayerKernel.swift: one encoder layer as a fixed-shape OpenBLAS SGEMM over groups of
// columns (taps gathered im2col-style), and the group size every SGEMM uses.
import COpenBLAS
import Foundation

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

/// One layer's weights as a column-major `[out x (kernel * in)]` matrix (tap-major columns:
/// K index `j * in + i` holds `W[:, i, j]`) and its bias.
final class LayerKernel {
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
