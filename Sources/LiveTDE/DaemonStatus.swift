// DaemonStatus.swift: the daemon's reply to a `status` request (docs/daemon.md, `tded status`).

/// The daemon's counters at one moment: what a client receives after sending `status`
/// (`{"type":"status","v":1,...}`, one line). Decodable with `JSONDecoder` (keys as on the
/// wire); `line` writes it with the numbers' fixed decimals.
public struct DaemonStatus: Codable, Equatable, Sendable {
    /// What the source is doing.
    public enum State: String, Codable, Sendable {
        /// Audio is flowing.
        case running
        /// Waiting for the capture device (gone or not yet there).
        case waiting
        /// A file input has been played to its end.
        case finished
    }

    /// Always `"status"` (an update line has no `type`).
    public var type = "status"
    /// Schema version, 1.
    public var v = 1
    /// Seconds since the daemon started.
    public var uptimeS: Double
    /// The source's label (`alsa:DEVICE`, `file:PATH`).
    public var source: String
    /// The source's state.
    public var state: State
    /// Engine sample rate, Hz.
    public var rate: Int
    /// The running estimator.
    public var method: EstimatorMethod
    /// Updates published per second.
    public var publishHz: Double
    /// Frames the source has delivered (stored or dropped).
    public var frames: Int
    /// Capture xruns recovered.
    public var xruns: Int
    /// Times the capture device was lost.
    public var deviceLost: Int
    /// Writes into the ring that had to drop frames (the engine fell behind).
    public var overruns: Int
    /// Frames dropped at the ring.
    public var droppedFrames: Int
    /// Clients connected now.
    public var clients: Int
    /// Connections accepted since start (status requests included).
    public var clientsTotal: Int
    /// Clients disconnected for reading too slowly.
    public var droppedClients: Int
    /// Lines skipped for slow clients.
    public var skippedLines: Int
    /// Lines published.
    public var published: Int
    /// Seconds of audio the engine has processed.
    public var audioS: Double
    /// Frames the engine has processed.
    public var engineFrames: Int
    /// CPU seconds of the engine thread.
    public var engineCPUS: Double
    /// Engine-thread CPU seconds per second of audio.
    public var engineLoad: Double
    /// CPU seconds of the whole process.
    public var processCPUS: Double
    /// Input samples that were NaN or infinite (replaced by 0).
    public var nonfiniteSamples: Int
    /// Input samples beyond full scale (clipped).
    public var clippedSamples: Int
    /// Resident memory, kB.
    public var rssKB: Int
    /// Heap in use (glibc malloc), kB.
    public var heapInUseKB: Int
    /// Heap free but kept by malloc, kB.
    public var heapFreeKB: Int
    /// Open file descriptors.
    public var fds: Int
    /// ALSA capture only: the configured device.
    public var device: String?
    /// ALSA capture only: the rate the device opened at.
    public var deviceRate: Int?
    /// ALSA capture only: latency of capture-side resampling, ms (0 when the rates are equal).
    public var resampleLatencyMs: Double?

    enum CodingKeys: String, CodingKey {
        case type, v, source, state, rate, method, frames, xruns, overruns, clients, published, fds, device
        case uptimeS = "uptime_s", publishHz = "publish_hz", deviceLost = "device_lost"
        case droppedFrames = "dropped_frames", clientsTotal = "clients_total"
        case droppedClients = "dropped_clients", skippedLines = "skipped_lines", audioS = "audio_s"
        case engineFrames = "engine_frames", engineCPUS = "engine_cpu_s", engineLoad = "engine_load"
        case processCPUS = "process_cpu_s", nonfiniteSamples = "nonfinite_samples"
        case clippedSamples = "clipped_samples", rssKB = "rss_kb", heapInUseKB = "heap_in_use_kb"
        case heapFreeKB = "heap_free_kb", deviceRate = "device_rate", resampleLatencyMs = "resample_latency_ms"
    }

    /// What `tded status` prints: the counters a user looks at first, as (wire key, value) in
    /// this order (the device and its rate only when the daemon captures one).
    public var summary: [(key: String, value: String)] {
        var out: [(key: String, value: String)] = [("uptime_s", String(uptimeS)), ("source", source)]
        if let d = device { out.append(("device", d)) }
        out += [("state", state.rawValue), ("rate", String(rate))]
        if let r = deviceRate { out.append(("device_rate", String(r))) }
        if let l = resampleLatencyMs { out.append(("resample_latency_ms", String(l))) }
        out += [("method", method.rawValue), ("publish_hz", String(publishHz)), ("frames", String(frames)),
                ("xruns", String(xruns)), ("device_lost", String(deviceLost)), ("overruns", String(overruns)),
                ("dropped_frames", String(droppedFrames)), ("clients", String(clients)),
                ("clients_total", String(clientsTotal)), ("dropped_clients", String(droppedClients)),
                ("skipped_lines", String(skippedLines)), ("published", String(published)), ("audio_s", String(audioS)),
                ("engine_cpu_s", String(engineCPUS)), ("engine_load", String(engineLoad)),
                ("process_cpu_s", String(processCPUS))]
        return out
    }

    /// The wire form: one JSON object, keys in this order, numbers with fixed decimals.
    public var line: String {
        var w = JSONLine(capacity: 768)
        w.string("type", type)
        w.integer("v", v)
        w.number("uptime_s", uptimeS, digits: 1)
        w.string("source", source)
        w.string("state", state.rawValue)
        w.integer("rate", rate)
        w.string("method", method.rawValue)
        w.number("publish_hz", publishHz, digits: 2)
        w.integer("frames", frames)
        w.integer("xruns", xruns)
        w.integer("device_lost", deviceLost)
        w.integer("overruns", overruns)
        w.integer("dropped_frames", droppedFrames)
        w.integer("clients", clients)
        w.integer("clients_total", clientsTotal)
        w.integer("dropped_clients", droppedClients)
        w.integer("skipped_lines", skippedLines)
        w.integer("published", published)
        w.number("audio_s", audioS, digits: 2)
        w.integer("engine_frames", engineFrames)
        w.number("engine_cpu_s", engineCPUS, digits: 3)
        w.number("engine_load", engineLoad, digits: 4)
        w.number("process_cpu_s", processCPUS, digits: 3)
        w.integer("nonfinite_samples", nonfiniteSamples)
        w.integer("clipped_samples", clippedSamples)
        w.integer("rss_kb", rssKB)
        w.integer("heap_in_use_kb", heapInUseKB)
        w.integer("heap_free_kb", heapFreeKB)
        w.integer("fds", fds)
        if let d = device { w.string("device", d) }
        if let r = deviceRate { w.integer("device_rate", r) }
        if let l = resampleLatencyMs { w.number("resample_latency_ms", l, digits: 3) }
        return w.finish()
    }
}
