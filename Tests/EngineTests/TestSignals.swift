// Synthetic test signals with exactly known delays.
import Foundation

/// Deterministic SplitMix64 generator.
struct SeededRNG {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E3779B97F4A7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58476D1CE4E5B9
        z = (z ^ (z >> 27)) &* 0x94D049BB133111EB
        return z ^ (z >> 31)
    }
    mutating func uniform() -> Double { Double(next() >> 11) / Double(1 << 53) }
    mutating func gaussian() -> Double {
        let u = max(uniform(), 1e-300), v = uniform()
        return (-2 * log(u)).squareRoot() * cos(2 * Double.pi * v)
    }
}

enum SignalKind: String, CaseIterable { case white, chirp, speechLike }

enum TestSignals {
    /// Source signal (Double) of `n` samples at 16 kHz.
    static func source(_ kind: SignalKind, count n: Int, seed: UInt64 = 1) -> [Double] {
        var rng = SeededRNG(seed: seed)
        switch kind {
        case .white:
            return (0..<n).map { _ in 0.3 * rng.gaussian() }
        case .chirp:
            // linear chirp 200 Hz -> 7 kHz, repeated every 50 ms (each 1024-sample window holds
            // at least one full sweep)
            let T = 0.05, f0 = 200.0, f1 = 7000.0
            return (0..<n).map { i in
                let t = (Double(i) / 16000).truncatingRemainder(dividingBy: T)
                return 0.5 * sin(2 * Double.pi * (f0 * t + (f1 - f0) * t * t / (2 * T)))
            }
        case .speechLike:
            // white noise band-passed to 200-4000 Hz (windowed-sinc FIR), 4 Hz syllable envelope
            let noise = (0..<(n + 256)).map { _ in rng.gaussian() }
            let taps = 129, m = taps / 2
            var h = [Double](repeating: 0, count: taps)
            for k in 0..<taps {
                let x = Double(k - m)
                let lp = { (fc: Double) -> Double in x == 0 ? 2 * fc : sin(2 * Double.pi * fc * x) / (Double.pi * x) }
                let w = 0.42 - 0.5 * cos(2 * Double.pi * Double(k) / Double(taps - 1)) + 0.08 * cos(4 * Double.pi * Double(k) / Double(taps - 1))
                h[k] = (lp(4000.0 / 16000) - lp(200.0 / 16000)) * w
            }
            return (0..<n).map { i in
                var s = 0.0
                for k in 0..<taps { s += h[k] * noise[i + k] }
                let env = 0.35 + 0.65 * max(0, sin(2 * Double.pi * 4 * Double(i) / 16000))
                return 0.8 * s * env
            }
        }
    }

    /// Value of `x` at fractional position `pos` by a Blackman-windowed sinc (half width 32).
    static func interpolate(_ x: [Double], at pos: Double) -> Double {
        let half = 32
        let c = Int(pos.rounded(.down))
        var s = 0.0
        for k in (c - half + 1)...(c + half) where k >= 0 && k < x.count {
            let d = pos - Double(k)
            let sinc = d == 0 ? 1 : sin(Double.pi * d) / (Double.pi * d)
            let u = (d + Double(half)) / Double(2 * half)   // in (0, 1)
            let w = 0.42 - 0.5 * cos(2 * Double.pi * u) + 0.08 * cos(4 * Double.pi * u)
            s += x[k] * sinc * w
        }
        return s
    }

    /// Stereo pair of `n` samples where the RIGHT channel is the left delayed by `delay`
    /// samples (fractional allowed; negative = right earlier), plus independent white noise at
    /// `snrDb` per channel.
    static func stereo(_ kind: SignalKind, count n: Int, delay: Double, snrDb: Double = 50,
                       seed: UInt64 = 1) -> (left: [Float], right: [Float]) {
        let pad = 64
        let src = source(kind, count: n + 2 * pad, seed: seed)
        var left = [Float](repeating: 0, count: n), right = left
        var rng = SeededRNG(seed: seed &+ 1000)
        var p = 0.0
        for i in 0..<n { p += src[i + pad] * src[i + pad] }
        let noiseStd = (p / Double(n)).squareRoot() * pow(10, -snrDb / 20)
        for i in 0..<n {
            let l = interpolate(src, at: Double(i + pad))
            let r = interpolate(src, at: Double(i + pad) - delay)
            left[i] = Float(l + noiseStd * rng.gaussian())
            right[i] = Float(r + noiseStd * rng.gaussian())
        }
        return (left, right)
    }
}
