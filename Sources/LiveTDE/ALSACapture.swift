import Atomics
import CALSA
import Foundation
import Logging
import RingBuffer

/// Silences ALSA's own stderr messages on the calling thread (we log one line ourselves).
private let quietALSA: snd_local_error_handler_t = { _, _, _, _, _, _ in }

/// ALSA capture on a dedicated thread: opens the PCM, negotiates format/channels/rate/period/
/// buffer, and copies every period into the ring (converted to float, the two selected
/// channels only). The loop allocates nothing: the period buffer is allocated at open.
///
/// Fault handling:
/// - xrun (`-EPIPE`), suspend (`-ESTRPIPE`), `-EINTR`: `snd_pcm_recover`, counted, continue.
/// - device gone (`-ENODEV`, `-EBADFD`, `-EIO`, any error `snd_pcm_recover` cannot fix, or a
///   *runaway clock*: the device delivering audio much faster than real time, which is what a
///   FIFO-backed `file` PCM does once its writer has gone): logged once, the PCM is closed and
///   reopened with exponential backoff (up to `retry_max_seconds`) until it comes back. The
///   process never exits because of the device.
public final class ALSACapture: AudioSource, @unchecked Sendable {
    /// Counters.
    public let stats = CaptureStats()
    /// `alsa:<device>`.
    public var label: String { "alsa:\(settings.device)" }
    private let settings: DaemonConfig.Capture
    private let ring: StereoRing
    private let logger: Logger
    private let keepRunning = ManagedAtomic<Bool>(true)
    private var thread: Thread?
    /// Rate actually negotiated (0 until open).
    public let negotiatedRate = ManagedAtomic<Int>(0)
    /// The engine's rate: a device at another rate is resampled on this side (`CaptureResampler`).
    public let engineRate: Int
    /// Latency the capture-side resampler adds, microseconds (0 when the rates are equal).
    public let resampleLatencyMicros = ManagedAtomic<Int>(0)

    /// Creates a capture source for `settings` writing into `ring` at `engineRate` Hz
    /// (default: the device rate, no resampling).
    public init(settings: DaemonConfig.Capture, ring: StereoRing, logger: Logger, engineRate: Int? = nil) {
        self.settings = settings
        self.ring = ring
        self.logger = logger
        self.engineRate = engineRate ?? settings.rate
    }

    /// Starts the capture thread.
    public func start() {
        let t = Thread { [self] in self.run() }
        t.name = "tded-capture"
        t.stackSize = 1 << 20
        thread = t
        t.start()
    }

    /// Stops the loop after its current read (a read blocked on a silent device is abandoned;
    /// the process exit reclaims it).
    public func stop() { keepRunning.store(false, ordering: .relaxed) }

    private var alive: Bool { keepRunning.load(ordering: .relaxed) }

    /// An open, configured PCM and its preallocated period buffer.
    struct OpenPCM {
        let pcm: OpaquePointer
        let period: Int
        let rate: Int
        let buffer: UnsafeMutableRawPointer
    }

    enum EndReason { case stopped, lost(String) }

    private func run() {
        _ = snd_lib_error_set_local(quietALSA)
        setThreadName("tded-capture")  // visible in top -H and /proc
        var backoff = 0.1
        var lostLogged = false
        while alive {
            let opened: OpenPCM
            do {
                opened = try ALSACapture.open(settings)
            } catch {
                if !lostLogged {
                    logger.error("capture device \(settings.device) unavailable: \(error); retrying with backoff")
                    lostLogged = true
                }
                interruptibleSleep(backoff) { alive }
                backoff = min(backoff * 2, settings.retryMaxSeconds)
                continue
            }
            stats.opens.wrappingIncrement(ordering: .relaxed)
            negotiatedRate.store(opened.rate, ordering: .relaxed)
            if lostLogged {
                logger.notice("capture device \(settings.device) is back (\(opened.rate) Hz, period \(opened.period))")
            } else {
                logger.info("capturing from \(settings.device): \(settings.format.rawValue), \(settings.deviceChannels) ch (using \(settings.channels)), \(opened.rate) Hz, period \(opened.period) frames")
            }
            lostLogged = false
            backoff = 0.1
            stats.running.store(1, ordering: .relaxed)
            let reason = captureLoop(opened)
            stats.running.store(0, ordering: .relaxed)
            snd_pcm_close(opened.pcm)
            opened.buffer.deallocate()
            if case .lost(let why) = reason {
                stats.deviceLost.wrappingIncrement(ordering: .relaxed)
                logger.error("capture device \(settings.device) lost: \(why); retrying with backoff")
                lostLogged = true
                interruptibleSleep(backoff) { alive }
            }
        }
    }

    /// Opens and configures the PCM; throws a one-line reason.
    static func open(_ s: DaemonConfig.Capture) throws -> OpenPCM {
        var pcmOpt: OpaquePointer?
        var err = snd_pcm_open(&pcmOpt, s.device, SND_PCM_STREAM_CAPTURE, 0)
        guard err >= 0, let pcm = pcmOpt else { throw ALSAError("cannot open PCM \"\(s.device)\"", err) }
        var hw: OpaquePointer?
        snd_pcm_hw_params_malloc(&hw)
        defer { snd_pcm_hw_params_free(hw) }
        func fail(_ what: String, _ e: Int32) -> ALSAError { snd_pcm_close(pcm); return ALSAError(what, e) }
        err = snd_pcm_hw_params_any(pcm, hw)
        if err < 0 { throw fail("no hardware configuration", err) }
        err = snd_pcm_hw_params_set_access(pcm, hw, SND_PCM_ACCESS_RW_INTERLEAVED)
        if err < 0 { throw fail("interleaved read access not supported", err) }
        let fmt: snd_pcm_format_t
        switch s.format {
        case .s16: fmt = SND_PCM_FORMAT_S16_LE
        case .s32: fmt = SND_PCM_FORMAT_S32_LE
        case .float: fmt = SND_PCM_FORMAT_FLOAT_LE
        }
        err = snd_pcm_hw_params_set_format(pcm, hw, fmt)
        if err < 0 { throw fail("format \(s.format.rawValue) not supported (try plughw: or another capture.format)", err) }
        err = snd_pcm_hw_params_set_channels(pcm, hw, UInt32(s.deviceChannels))
        if err < 0 { throw fail("\(s.deviceChannels) channels not supported (set capture.device_channels)", err) }
        var rate = UInt32(s.rate)
        var dir: Int32 = 0
        err = snd_pcm_hw_params_set_rate_near(pcm, hw, &rate, &dir)
        if err < 0 || rate != UInt32(s.rate) {
            throw fail("rate \(s.rate) Hz not supported (device offers \(rate) Hz: set capture.rate = \(rate); tded resamples to engine.rate itself)", min(err, 0))
        }
        var period = snd_pcm_uframes_t(s.periodFrames)
        err = snd_pcm_hw_params_set_period_size_near(pcm, hw, &period, &dir)
        if err < 0 { throw fail("period size \(s.periodFrames) not supported", err) }
        var bufSize = snd_pcm_uframes_t(max(s.bufferFrames, Int(period) * 2))
        err = snd_pcm_hw_params_set_buffer_size_near(pcm, hw, &bufSize)
        if err < 0 { throw fail("buffer size \(s.bufferFrames) not supported", err) }
        err = snd_pcm_hw_params(pcm, hw)
        if err < 0 { throw fail("cannot apply hardware parameters", err) }
        snd_pcm_hw_params_current(pcm, hw)
        snd_pcm_hw_params_get_period_size(hw, &period, &dir)
        err = snd_pcm_prepare(pcm)
        if err < 0 { throw fail("cannot prepare", err) }
        let bytes = Int(period) * s.deviceChannels * s.format.bytes
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 16)
        buffer.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
        return OpenPCM(pcm: pcm, period: Int(period), rate: Int(rate), buffer: buffer)
    }

    private func captureLoop(_ o: OpenPCM) -> EndReason {
        let ch = settings.deviceChannels
        let li = settings.channels[0], ri = settings.channels[1]
        let rate = Double(o.rate)
        // Runaway-clock detection: audio delivered vs wall time since the last (re)start.
        var clockStart = monotonicSeconds()
        var framesSinceStart = 0
        let slack = 0.5 + Double(settings.bufferFrames) / rate
        // Device rate != engine rate: resample here (buffers allocated now, once per open).
        var resampler: CaptureResampler? = nil
        if o.rate != engineRate {
            do {
                let r = try CaptureResampler(from: rate, to: Double(engineRate), maxFrames: o.period)
                let lat = try r.measuredLatencySeconds()
                resampleLatencyMicros.store(Int((lat * 1e6).rounded()), ordering: .relaxed)
                logger.info("resampling capture \(o.rate) Hz -> engine \(engineRate) Hz (libsoxr HQ, adds \(String(format: "%.2f", lat * 1000)) ms latency)")
                resampler = r
            } catch {
                return .lost("cannot resample \(o.rate) -> \(engineRate) Hz: \(error)")
            }
        }
        while alive {
            let n = Int(snd_pcm_readi(o.pcm, o.buffer, snd_pcm_uframes_t(o.period)))
            if n < 0 {
                let e = Int32(n)
                if e == -EAGAIN { continue }
                if e == -ENODEV || e == -EBADFD || e == -EIO || e == -ENOTTY || e == -ENXIO {
                    return .lost(ALSAError("read failed", e).description)
                }
                let r = snd_pcm_recover(o.pcm, e, 1)
                if r < 0 { return .lost(ALSAError("read failed and recovery failed", e).description) }
                if e == -EPIPE { stats.xruns.wrappingIncrement(ordering: .relaxed) }
                else { stats.recoveries.wrappingIncrement(ordering: .relaxed) }
                clockStart = monotonicSeconds(); framesSinceStart = 0
                continue
            }
            if n == 0 { continue }
            // `frames` counts what reaches the ring (engine-rate frames, also when resampling)
            var toRing = n
            if let rs = resampler {
                let n = min(n, rs.maxFrames)
                let l = rs.inLeft, r = rs.inRight
                switch settings.format {
                case .s16:
                    let p = o.buffer.assumingMemoryBound(to: Int16.self)
                    for i in 0..<n {
                        l[i] = Float(Int16(littleEndian: p[i * ch + li])) * (1 / 32768)
                        r[i] = Float(Int16(littleEndian: p[i * ch + ri])) * (1 / 32768)
                    }
                case .s32:
                    let p = o.buffer.assumingMemoryBound(to: Int32.self)
                    for i in 0..<n {
                        l[i] = Float(Int32(littleEndian: p[i * ch + li])) * (1 / 2147483648)
                        r[i] = Float(Int32(littleEndian: p[i * ch + ri])) * (1 / 2147483648)
                    }
                case .float:
                    let p = o.buffer.assumingMemoryBound(to: Float.self)
                    for i in 0..<n { l[i] = p[i * ch + li]; r[i] = p[i * ch + ri] }
                }
                var produced = 0
                let ok = rs.process(count: n) { ol, or, k in ring.write(left: ol, right: or, count: k); produced += k }
                if !ok { return .lost("resampling failed") }
                toRing = produced
            } else {
            switch settings.format {
            case .s16:
                let p = o.buffer.assumingMemoryBound(to: Int16.self)
                ring.write(count: n) { i in
                    StereoFrame(left: Float(Int16(littleEndian: p[i * ch + li])) * (1 / 32768),
                                right: Float(Int16(littleEndian: p[i * ch + ri])) * (1 / 32768))
                }
            case .s32:
                let p = o.buffer.assumingMemoryBound(to: Int32.self)
                ring.write(count: n) { i in
                    StereoFrame(left: Float(Int32(littleEndian: p[i * ch + li])) * (1 / 2147483648),
                                right: Float(Int32(littleEndian: p[i * ch + ri])) * (1 / 2147483648))
                }
            case .float:
                let p = o.buffer.assumingMemoryBound(to: Float.self)
                ring.write(count: n) { i in StereoFrame(left: p[i * ch + li], right: p[i * ch + ri]) }
            }
            }
            stats.frames.wrappingIncrement(by: toRing, ordering: .relaxed)
            framesSinceStart += n
            // A device cannot deliver more audio than the wall time since the anchor plus what
            // its buffer held (and scheduling slack); a much faster stream has no real source.
            let audio = Double(framesSinceStart) / rate
            let wall = monotonicSeconds() - clockStart
            if audio - wall > slack {
                return .lost(String(format: "device delivered %.2f s of audio in %.2f s (faster than real time: its source is gone)", audio, wall))
            }
            if audio > 30 {
                // Re-anchor, keeping a backlog (lead < 0) but not a lead from clock drift.
                clockStart = monotonicSeconds() + min(audio - wall, 0)
                framesSinceStart = 0
            }
        }
        return .stopped
    }
}

/// An ALSA failure with its `snd_strerror` text.
public struct ALSAError: Error, CustomStringConvertible {
    /// The message.
    public let description: String
    init(_ what: String, _ err: Int32) {
        description = err < 0 ? "\(what): \(String(cString: snd_strerror(err)))" : what
    }
}
