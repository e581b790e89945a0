// Smoother.swift: alpha-beta tracker on the published delay, with gating and hold/decay.
import Foundation

/// Settings of `DelaySmoother`.
public struct SmootherConfig: Equatable, Sendable {
    /// Position gain of the alpha-beta filter (0 < alpha <= 1; 1 = no smoothing).
    public var alpha: Double = 0.5
    /// Velocity gain (0 <= beta < 2; 0 = constant-position filter).
    public var beta: Double = 0.05
    /// A measurement farther than this (samples) from the prediction is an outlier and ignored.
    public var gateSamples: Double = 4
    /// After this many consecutive outliers the track jumps to the new measurement (the source
    /// really moved or a new one took over).
    public var reacquireAfter: Int = 3
    /// With no usable measurement (silence, no votes, low confidence) the last value is held
    /// unchanged for this long (seconds) ...
    public var holdSeconds: Double = 1.0
    /// ... after which the confidence decays exponentially with this time constant (seconds)
    /// and the output is flagged stale. The delay value itself is kept (never invented).
    public var decaySeconds: Double = 2.0

    public init(alpha: Double = 0.5, beta: Double = 0.05, gateSamples: Double = 4,
                reacquireAfter: Int = 3, holdSeconds: Double = 1.0, decaySeconds: Double = 2.0) {
        self.alpha = alpha; self.beta = beta; self.gateSamples = gateSamples
        self.reacquireAfter = reacquireAfter; self.holdSeconds = holdSeconds
        self.decaySeconds = decaySeconds
    }
}

/// Alpha-beta (constant-velocity) filter on the delay in samples for the published stream.
/// Value type; `update` and `hold` are O(1) and allocate nothing.
public struct DelaySmoother: Sendable {
    /// Output of one step.
    public struct State: Equatable, Sendable {
        /// Smoothed delay in samples.
        public var delay: Double
        /// Estimated rate of change, samples per second.
        public var velocity: Double
        /// Smoothed confidence in [0, 1] (decays while holding past `holdSeconds`).
        public var confidence: Double
        /// The measurement was rejected by the gate this step.
        public var gated: Bool
        /// No measurement was used this step; the previous value is held.
        public var holding: Bool
        /// Held for longer than `holdSeconds`.
        public var stale: Bool
        /// No measurement has ever been accepted.
        public var uninitialised: Bool
    }

    public let config: SmootherConfig
    private var x = 0.0, v = 0.0, conf = 0.0
    private var lastT = 0.0, lastValidT = 0.0, lastValidConf = 0.0
    private var initialised = false
    private var outliers = 0

    public init(config: SmootherConfig = SmootherConfig()) { self.config = config }

    /// Forgets the track.
    public mutating func reset() { self = DelaySmoother(config: config) }

    /// Feeds one measurement (delay in samples, its confidence in [0,1]) taken at time `t` s.
    public mutating func update(measurement z: Double, confidence c: Double, t: Double) -> State {
        defer { lastT = t }
        guard initialised else {
            x = z; v = 0; conf = c; initialised = true; outliers = 0
            lastValidT = t; lastValidConf = c
            return state(gated: false, holding: false, t: t)
        }
        let dt = max(0, t - lastT)
        let xp = x + v * dt
        let r = z - xp
        if abs(r) > config.gateSamples {
            outliers += 1
            if outliers >= config.reacquireAfter {
                x = z; v = 0; conf = c; outliers = 0
                lastValidT = t; lastValidConf = c
                return state(gated: false, holding: false, t: t)
            }
            x = xp
            return state(gated: true, holding: true, t: t)
        }
        outliers = 0
        x = xp + config.alpha * r
        if dt > 0 { v += config.beta * r / dt }
        conf = conf + config.alpha * (c - conf)
        lastValidT = t; lastValidConf = conf
        return state(gated: false, holding: false, t: t)
    }

    /// A step without a usable measurement at time `t`: hold, then decay the confidence.
    public mutating func hold(t: Double) -> State {
        defer { lastT = t }
        v = 0
        return state(gated: false, holding: true, t: t)
    }

    private mutating func state(gated: Bool, holding: Bool, t: Double) -> State {
        var stale = false
        if holding {
            let held = t - lastValidT
            if held > config.holdSeconds {
                stale = true
                conf = lastValidConf * exp(-(held - config.holdSeconds) / max(config.decaySeconds, 1e-9))
            }
        }
        return State(delay: x, velocity: v, confidence: initialised ? conf : 0, gated: gated,
                     holding: holding, stale: stale || !initialised, uninitialised: !initialised)
    }
}
