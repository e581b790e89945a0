// HighPassFilter.swift: the input high-pass (rumble and DC blocker) in front of the estimator.
import Foundation

/// A second-order Butterworth high-pass applied identically to both channels before any
/// estimator sees the audio.
///
/// Why: energy below about 100 Hz (a DC offset, HVAC or traffic rumble, handling and wind noise,
/// a room's low modes) carries almost no delay information at spacings of a few centimetres to
/// a few decimetres, yet it can dominate a window's power. A window cut out of a slow waveform
/// has sharp, identical edges in both channels, whose broadband leakage puts a false peak at
/// lag 0 (the estimate then snaps to "straight ahead"). The same linear filter on both channels
/// leaves the inter-channel delay untouched.
///
/// The state runs in `Double` (poles close to 1 at 16 kHz). The filter starts in the steady
/// state of the stream's first sample, so a DC offset produces no start-up step. Allocates
/// nothing after `init`.
public struct HighPassFilter: Sendable {
    /// Cut-off (-3 dB) frequency in Hz.
    public let cutoffHz: Double
    /// The sample rate the coefficients are for, Hz.
    public let sampleRate: Double
    private let b0: Double, b1: Double, b2: Double, a1: Double, a2: Double
    // Transposed direct form II state of each channel.
    private var left = State(), right = State()
    private var started = false

    private struct State: Sendable { var s1 = 0.0, s2 = 0.0 }

    /// A filter with cut-off `cutoffHz` at `sampleRate`; throws `EngineConfigError` unless
    /// `0 < cutoffHz < 0.45 x sampleRate`.
    public init(cutoffHz: Double, sampleRate: Double) throws {
        guard cutoffHz.isFinite, sampleRate.isFinite, sampleRate > 0, cutoffHz > 0, cutoffHz < 0.45 * sampleRate else {
            throw EngineConfigError("high-pass cut-off must be above 0 and below 0.45 x the sample rate (\(0.45 * sampleRate) Hz), got \(cutoffHz) Hz")
        }
        self.cutoffHz = cutoffHz
        self.sampleRate = sampleRate
        // Bilinear transform of the analogue Butterworth prototype (Q = 1/sqrt 2), pre-warped.
        let w = 2 * Double.pi * cutoffHz / sampleRate
        let cw = cos(w), alpha = sin(w) / 2.0.squareRoot()   // sin(w) / (2 Q), Q = 1 / sqrt 2
        let a0 = 1 + alpha
        b0 = (1 + cw) / 2 / a0
        b1 = -(1 + cw) / a0
        b2 = (1 + cw) / 2 / a0
        a1 = -2 * cw / a0
        a2 = (1 - alpha) / a0
    }

    /// Gain |H| at `hz` (tests and docs).
    public func gain(atHz hz: Double) -> Double {
        let w = 2 * Double.pi * hz / sampleRate
        // H(z) = (b0 + b1 z^-1 + b2 z^-2) / (1 + a1 z^-1 + a2 z^-2), z = e^{iw}
        func mag(_ c0: Double, _ c1: Double, _ c2: Double) -> Double {
            let re = c0 + c1 * cos(w) + c2 * cos(2 * w)
            let im = -(c1 * sin(w) + c2 * sin(2 * w))
            return (re * re + im * im).squareRoot()
        }
        return mag(b0, b1, b2) / mag(1, a1, a2)
    }

    /// Forgets the state; the next sample starts the stream again.
    public mutating func reset() {
        left = State(); right = State(); started = false
    }

    /// Filters `n` samples of each channel from `l`, `r` into `outL`, `outR` (which may be the
    /// inputs themselves).
    public mutating func process(_ l: UnsafePointer<Float>, _ r: UnsafePointer<Float>,
                                 _ outL: UnsafeMutablePointer<Float>, _ outR: UnsafeMutablePointer<Float>, count n: Int) {
        guard n > 0 else { return }
        if !started {
            left = steadyState(Double(l[0])); right = steadyState(Double(r[0]))
            started = true
        }
        run(l, outL, n, &left)
        run(r, outR, n, &right)
    }

    /// The state a constant input `x0` leaves (the output of a high-pass is then 0).
    private func steadyState(_ x0: Double) -> State { State(s1: -b0 * x0, s2: b2 * x0) }

    /// One channel through the biquad, continuing from `state`.
    @inline(__always)
    private func run(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ n: Int, _ state: inout State) {
        var s1 = state.s1, s2 = state.s2
        for i in 0..<n {
            let v = Double(x[i])
            let y = b0 * v + s1
            s1 = b1 * v - a1 * y + s2
            s2 = b2 * v - a2 * y
            out[i] = Float(y)
        }
        state = State(s1: s1, s2: s2)
    }
}
