// SourceTracker.swift: several alpha-beta tracks with stable ids over the per-update peaks of
// the vote histogram (see MultiPeak.swift).
import Foundation

/// One published source.
public struct TrackedSource: Equatable, Sendable {
    /// Stable track id (1, 2, ... in order of birth, per stream; never reused).
    public var id: Int
    /// Smoothed delay, samples (positive = right channel later).
    public var delaySamples: Double
    /// Same in milliseconds.
    public var delayMs: Double
    /// Azimuth of `delaySamples`, degrees, positive toward the LEFT mic.
    public var azimuthDeg: Double
    /// Smoothed share of the votes (the smoother's confidence rules: held, then decaying).
    public var confidence: Double
    /// Share of this update's votes that support the source (0 when it was not seen).
    public var share: Double
    public init(id: Int, delaySamples: Double, delayMs: Double, azimuthDeg: Double, confidence: Double, share: Double) {
        self.id = id; self.delaySamples = delaySamples; self.delayMs = delayMs; self.azimuthDeg = azimuthDeg
        self.confidence = confidence; self.share = share
    }
}

/// Up to `SourceSearchConfig.sourceLimit` (4) sources, stored inline (no heap), strongest
/// first. `enabled` is false when the multi-source search is off (nothing is published then).
public struct SourceList: Equatable, Sendable, RandomAccessCollection {
    private var items: (TrackedSource, TrackedSource, TrackedSource, TrackedSource)
    /// Number of sources.
    public private(set) var count = 0
    /// The search ran (`maxSources > 0`): the `sources` field is published, possibly empty.
    public var enabled = false

    /// An empty list.
    public init(enabled: Bool = false) {
        let z = TrackedSource(id: 0, delaySamples: 0, delayMs: 0, azimuthDeg: 0, confidence: 0, share: 0)
        items = (z, z, z, z)
        self.enabled = enabled
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { count }
    public subscript(i: Int) -> TrackedSource {
        get {
            precondition(i >= 0 && i < count, "SourceList index out of range")
            switch i { case 0: return items.0; case 1: return items.1; case 2: return items.2; default: return items.3 }
        }
        set {
            precondition(i >= 0 && i < count, "SourceList index out of range")
            switch i { case 0: items.0 = newValue; case 1: items.1 = newValue; case 2: items.2 = newValue; default: items.3 = newValue }
        }
    }

    /// Appends (ignored when full).
    public mutating func append(_ s: TrackedSource) {
        guard count < SourceSearchConfig.sourceLimit else { return }
        count += 1
        self[count - 1] = s
    }

    /// Empties the list.
    public mutating func removeAll() { count = 0 }

    public static func == (a: SourceList, b: SourceList) -> Bool {
        a.enabled == b.enabled && a.count == b.count && zip(a, b).allSatisfy { $0 == $1 }
    }
}

/// Tracks several sources across updates:
/// - each update's peaks are assigned to the tracks by the assignment that minimises the sum
///   of |peak - predicted delay| / gate (exhaustive over at most 4 peaks x 8 tracks), a pair
///   farther apart than the gate never being assigned: the smoother's `gateSamples`, widened
///   by `gateSamples` per `holdSeconds` a track goes unseen;
/// - a matched track takes its peak with the smoother's alpha-beta gains;
/// - an unmatched peak starts a tentative track, published (given the next id) after
///   `birthUpdates` consecutive matched updates; a tentative track that misses is dropped;
/// - a published track that is not seen while others are (occluded: two tracks crossing
///   merge into one peak) coasts on its velocity, so the ids do not swap when the peaks
///   separate again; in silence (`hold`) every track holds its value (velocity 0), as the
///   smoother does;
/// - a track without a measurement for `holdSeconds` is stale and its confidence decays with
///   `decaySeconds`; it dies after `holdSeconds + decaySeconds` without a measurement. A track
///   unseen for more than `holdSeconds` while other sources are heard is no longer published
///   (no ghost of a source that moved or stopped), but keeps its id until it dies, so a talker
///   hidden behind another for up to `holdSeconds + decaySeconds` comes back under its id.
/// All storage is allocated at `init`; `update`/`hold` allocate nothing.
public final class SourceTracker {
    private struct Track {
        var active = false, confirmed = false
        var id = 0
        var x = 0.0, v = 0.0, conf = 0.0, share = 0.0
        var hits = 0
        var lastT = 0.0, lastSeenT = 0.0, lastSeenConf = 0.0
        var unseenActive = 0.0   // seconds unseen while other sources were heard
    }

    public let search: SourceSearchConfig
    public let smoother: SmootherConfig
    /// Tracks kept at most (published and tentative).
    public let capacity: Int
    private let tracks: UnsafeMutablePointer<Track>
    private let assign: UnsafeMutablePointer<Int>       // peak -> track (-1 none), best so far
    private let trial: UnsafeMutablePointer<Int>
    private let used: UnsafeMutablePointer<Bool>
    private let order: UnsafeMutablePointer<Int>
    private var bestCost = 0.0
    private var nextId = 1
    private var lastUpdateT = 0.0

    public init(search: SourceSearchConfig, smoother: SmootherConfig) {
        precondition((1...SourceSearchConfig.sourceLimit).contains(search.maxSources))
        self.search = search; self.smoother = smoother
        capacity = 2 * search.maxSources
        tracks = .allocate(capacity: capacity); tracks.initialize(repeating: Track(), count: capacity)
        assign = .allocate(capacity: SourceSearchConfig.sourceLimit)
        trial = .allocate(capacity: SourceSearchConfig.sourceLimit)
        used = .allocate(capacity: capacity); used.initialize(repeating: false, count: capacity)
        order = .allocate(capacity: capacity)
    }
    deinit {
        tracks.deallocate(); assign.deallocate(); trial.deallocate(); used.deallocate(); order.deallocate()
    }

    /// Forgets every track; ids restart at 1.
    public func reset() {
        for i in 0..<capacity { tracks[i] = Track() }
        nextId = 1; lastUpdateT = 0
    }

    @inline(__always) private func predicted(_ k: Int, _ t: Double) -> Double {
        let tr = tracks[k]
        return tr.x + tr.v * max(0, t - tr.lastT)
    }

    /// The gate of track `k` at `t`: `gateSamples`, widened while the track goes unseen by
    /// `gateSamples` per `holdSeconds` (a coasting prediction grows uncertain).
    @inline(__always) private func gate(_ k: Int, _ t: Double) -> Double {
        smoother.gateSamples * (1 + max(0, t - tracks[k].lastSeenT) / max(smoother.holdSeconds, 1e-3))
    }

    /// Exhaustive search over assignments of peaks `p...` to unused tracks (or none).
    private func explore(_ p: Int, _ n: Int, _ peaks: UnsafePointer<SourcePeak>, _ t: Double, _ cost: Double) {
        if cost >= bestCost { return }
        if p == n {
            bestCost = cost
            for i in 0..<n { assign[i] = trial[i] }
            return
        }
        // Costs are distances in units of the pair's gate; leaving a peak unassigned (it would
        // start a new track) costs 1.
        trial[p] = -1
        explore(p + 1, n, peaks, t, cost + 1)
        for k in 0..<capacity where tracks[k].active && !used[k] {
            let d = abs(peaks[p].delay - predicted(k, t))
            let g = gate(k, t)
            guard d <= g else { continue }
            used[k] = true; trial[p] = k
            // Tentative tracks cost a little more, so a published one wins a tie.
            explore(p + 1, n, peaks, t, cost + d / g + (tracks[k].confirmed ? 0 : 1e-3))
            used[k] = false
        }
    }

    /// One update with `n` peaks (strongest first) measured at time `t` seconds.
    public func update(peaks: UnsafePointer<SourcePeak>, count n: Int, t: Double) {
        let n = min(n, SourceSearchConfig.sourceLimit)
        let dtUpdate = max(0, t - lastUpdateT)
        lastUpdateT = t
        bestCost = Double.infinity
        for i in 0..<capacity { used[i] = false }
        explore(0, n, peaks, t, 0)
        for i in 0..<capacity { used[i] = false }
        for p in 0..<n where assign[p] >= 0 { used[assign[p]] = true }
        // Unmatched tracks: coast (published) or drop (tentative).
        for k in 0..<capacity where tracks[k].active && !used[k] {
            var tr = tracks[k]
            if !tr.confirmed { tracks[k] = Track(); continue }
            tr.x = tr.x + tr.v * max(0, t - tr.lastT)
            tr.lastT = t
            tr.share = 0
            tr.unseenActive += dtUpdate
            decay(&tr, t)
            tracks[k] = tr
            if t - tr.lastSeenT > smoother.holdSeconds + smoother.decaySeconds {
                tracks[k] = Track()
            }
        }
        // Matched tracks take their peak.
        for p in 0..<n {
            let pk = peaks[p]
            if assign[p] >= 0 {
                let k = assign[p]
                var tr = tracks[k]
                let dt = max(0, t - tr.lastT)
                let xp = tr.x + tr.v * dt
                let r = pk.delay - xp
                tr.x = xp + smoother.alpha * r
                if dt > 0 { tr.v += smoother.beta * r / dt }
                tr.conf += smoother.alpha * (pk.share - tr.conf)
                tr.share = pk.share
                tr.lastT = t; tr.lastSeenT = t; tr.lastSeenConf = tr.conf; tr.unseenActive = 0
                tr.hits += 1
                if !tr.confirmed && tr.hits >= search.birthUpdates {
                    tr.confirmed = true; tr.id = nextId; nextId += 1
                }
                tracks[k] = tr
            } else if let k = freeSlot() {
                var tr = Track()
                tr.active = true; tr.x = pk.delay; tr.conf = pk.share; tr.share = pk.share
                tr.hits = 1; tr.lastT = t; tr.lastSeenT = t; tr.lastSeenConf = pk.share
                if search.birthUpdates <= 1 { tr.confirmed = true; tr.id = nextId; nextId += 1 }
                tracks[k] = tr
            }
        }
    }

    /// An update without a usable measurement (silence, no votes, low confidence): every track
    /// holds its value with velocity 0; confidences decay after `holdSeconds`; tracks die
    /// after `holdSeconds + decaySeconds` without a measurement; tentative tracks are dropped.
    public func hold(t: Double) {
        lastUpdateT = t
        for k in 0..<capacity where tracks[k].active {
            var tr = tracks[k]
            if !tr.confirmed { tracks[k] = Track(); continue }
            tr.v = 0; tr.lastT = t; tr.share = 0
            decay(&tr, t)
            tracks[k] = t - tr.lastSeenT > smoother.holdSeconds + smoother.decaySeconds ? Track() : tr
        }
    }

    private func decay(_ tr: inout Track, _ t: Double) {
        let held = t - tr.lastSeenT
        if held > smoother.holdSeconds {
            tr.conf = tr.lastSeenConf * exp(-(held - smoother.holdSeconds) / max(smoother.decaySeconds, 1e-9))
        }
    }

    private func freeSlot() -> Int? {
        for k in 0..<capacity where !tracks[k].active { return k }
        return nil
    }

    /// The published tracks, by decreasing confidence (ties: lower id first), at most
    /// `maxSources`, with azimuths from `azimuth`.
    public func published(azimuth: AzimuthConverter) -> SourceList {
        var list = SourceList(enabled: true)
        var m = 0
        for k in 0..<capacity where tracks[k].active && tracks[k].confirmed && tracks[k].unseenActive <= smoother.holdSeconds {
            order[m] = k; m += 1
        }
        // insertion sort (m <= 8)
        if m > 1 {
            for i in 1..<m {
                let key = order[i]
                var j = i - 1
                while j >= 0 && better(key, order[j]) { order[j + 1] = order[j]; j -= 1 }
                order[j + 1] = key
            }
        }
        for i in 0..<min(m, search.maxSources) {
            let tr = tracks[order[i]]
            list.append(TrackedSource(id: tr.id, delaySamples: tr.x, delayMs: tr.x / azimuth.sampleRate * 1000,
                                      azimuthDeg: azimuth.azimuth(delaySamples: tr.x).degrees,
                                      confidence: tr.conf, share: tr.share))
        }
        return list
    }

    private func better(_ a: Int, _ b: Int) -> Bool {
        let x = tracks[a], y = tracks[b]
        return x.conf != y.conf ? x.conf > y.conf : x.id < y.id
    }
}
