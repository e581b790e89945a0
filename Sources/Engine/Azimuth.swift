// Azimuth.swift: far-field delay -> azimuth for a two-microphone array.
import Foundation

/// Far-field azimuth of a source from the inter-channel delay of a two-mic array.
///
/// Conventions (used everywhere in LiveTDE):
/// - delay `tau > 0` means the RIGHT channel is later, i.e. the source is nearer the LEFT mic;
/// - azimuth is measured from the array's forward axis (broadside, perpendicular to the mic
///   axis), in degrees, POSITIVE TOWARD THE LEFT mic (counter-clockwise seen from above, the
///   ROS REP-103 convention: x forward, y left). So a positive delay gives a positive azimuth:
///   `azimuth = asin(c * tau / d)`.
///
/// ```
///                 forward (0 deg)
///                      ^
///       +90 deg  <--   |   -->  -90 deg
///            L o-------+-------o R
///              |<----- d ----->|
///   source on the left: reaches L first, R later -> delay > 0 -> azimuth > 0
/// ```
/// A far-field two-mic array cannot tell front from back; the azimuth is in [-90, 90].
public struct AzimuthConverter: Sendable, Equatable {
    /// Microphone spacing in metres.
    public var micDistance: Double
    /// Speed of sound in m/s.
    public var soundSpeed: Double
    /// Sample rate in Hz (to convert delays in samples).
    public var sampleRate: Double

    public init(micDistance: Double, soundSpeed: Double = 343, sampleRate: Double = 16000) {
        self.micDistance = micDistance; self.soundSpeed = soundSpeed; self.sampleRate = sampleRate
    }

    /// Largest physically possible |delay| in samples (`d / c * rate`).
    public var maxPhysicalDelaySamples: Double { micDistance / soundSpeed * sampleRate }

    /// Result of a conversion.
    public struct Result: Equatable, Sendable {
        /// Azimuth in degrees, in [-90, 90], positive toward the left mic.
        public var degrees: Double
        /// True when `|c * tau / d| > 1` (the delay is beyond the physical range and the
        /// azimuth was clamped to +-90).
        public var beyondPhysicalRange: Bool
    }

    /// Converts a delay in samples (positive = right later) to an azimuth.
    public func azimuth(delaySamples: Double) -> Result {
        let s = soundSpeed * (delaySamples / sampleRate) / micDistance
        guard s.isFinite else { return Result(degrees: 0, beyondPhysicalRange: true) }
        let beyond = abs(s) > 1
        let clamped = min(1, max(-1, s))
        return Result(degrees: asin(clamped) * 180 / Double.pi, beyondPhysicalRange: beyond)
    }

    /// Inverse: the delay in samples a far-field source at `degrees` produces.
    public func delaySamples(azimuthDegrees degrees: Double) -> Double {
        sin(degrees * Double.pi / 180) * micDistance / soundSpeed * sampleRate
    }
}
