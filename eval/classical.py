"""Classical reference estimators, computed in Python, for comparison with tded (issue 10).

These are what a user would write instead of running tded; they are NOT tded's algorithm and
their rows in the results are labelled ``ref-*``. Nothing here is used to produce a tded row.

Sign convention (the same as tded and eval/generate.py): delay > 0 = the right channel is
later = the source is nearer the LEFT mic. All delays are returned in samples at RATE.

- ``gcc_phat_whole``: one cross-spectrum over the whole clip (rfft of both channels with
  n >= 2 * len, so the correlation is linear), PHAT once (divide by |G| + eps), irfft, search
  +-max_lag, parabolic peak refinement.
- ``ref-gcc-phat-geo``: ``gcc_phat_whole`` searching only the lags the array can produce,
  ``geometry_max_lag`` (mic spacing / c + 10 % + one sample, the range of tded's
  ``max_delay_ms = "auto"``), as a user who knows the spacing writes it.
- ``gcc_phat_welch``: 1024-sample Hann frames, hop 256, sum of the frames' cross-spectra (each
  zero-padded to 2048), PHAT once on the sum, parabolic peak.
- ``doa_delay`` (pyroomacoustics SRP-PHAT / NormMUSIC): 2 mics at the room's mic positions
  (x, y), STFT with nfft 1024 (Hann, hop 256), 300-3500 Hz, azimuth over the half plane facing
  into the room searched to 0.1 degree (1-degree grid, then 0.1 degree around its maximum);
  the azimuth of the spatial spectrum's global maximum (grid ends included) is turned into a
  far-field delay d sin(theta) / c, theta positive toward the left mic as generate.py's.
- ``LiveGccPhat``: the live reference, an exponentially averaged cross-spectrum (1024-sample
  Hann frames, hop 256, time constant 0.3 s), PHAT on the average, parabolic peak, read at
  given times; eval/live.py gives it the geometry's lag range (``geometry_max_lag``), as the
  daemon's default searches.
"""
from __future__ import annotations

import math

import numpy as np

RATE = 16000
C = 343.0
MAX_DELAY_MS = 1.5              # tded's engine.max_delay_ms default
EPS = 1e-12
FRAME = 1024
HOP = 256
FREQ_RANGE = (300.0, 3500.0)
GRID_STEP_DEG = 0.1
LIVE_TAU_S = 0.3


def max_lag_samples(rate: int = RATE, max_delay_ms: float = MAX_DELAY_MS) -> int:
    return int(math.floor(max_delay_ms * rate / 1000.0 + 1e-9))


def geometry_max_lag(mic_distance: float, rate: int = RATE, c: float = C) -> int:
    """Lags an array of this spacing can produce, +10 % and one sample (tded's "auto" range)."""
    return max_lag_samples(rate, 1000.0 * mic_distance / c * 1.1 + 1000.0 / rate)


def _next_pow2(n: int) -> int:
    return 1 << (int(n) - 1).bit_length()


def peak_from_cross_spectrum(g: np.ndarray, nfft: int, max_lag: int) -> float:
    """PHAT-weight the cross-spectrum g = R * conj(L) (length nfft//2+1), inverse FFT, pick the
    highest lag in [-max_lag, max_lag] and refine it with a parabola through its neighbours.
    Returns the delay of the right channel relative to the left, in samples."""
    w = g / (np.abs(g) + EPS)
    cc = np.fft.irfft(w, nfft)
    # lags -max_lag-1 .. max_lag+1 (the outer two only for the parabola's neighbours)
    idx = np.arange(-max_lag - 1, max_lag + 2) % nfft
    seg = cc[idx]
    k = 1 + int(np.argmax(seg[1:-1]))
    y0, y1, y2 = seg[k - 1], seg[k], seg[k + 1]
    den = y0 - 2.0 * y1 + y2
    frac = 0.5 * (y0 - y2) / den if den < 0 else 0.0
    frac = max(-0.5, min(0.5, frac))
    lag = (k - (max_lag + 1)) + frac
    return float(max(-max_lag, min(max_lag, lag)))


def gcc_phat_whole(left: np.ndarray, right: np.ndarray, max_lag: int | None = None) -> float:
    max_lag = max_lag_samples() if max_lag is None else max_lag
    n = _next_pow2(2 * len(left))
    g = np.fft.rfft(right, n) * np.conj(np.fft.rfft(left, n))
    return peak_from_cross_spectrum(g, n, max_lag)


def _frames(x: np.ndarray, frame: int = FRAME, hop: int = HOP) -> np.ndarray:
    if len(x) < frame:
        x = np.concatenate([x, np.zeros(frame - len(x))])
    n = 1 + (len(x) - frame) // hop
    idx = np.arange(frame)[None, :] + hop * np.arange(n)[:, None]
    return x[idx]


def frame_cross_spectra(left: np.ndarray, right: np.ndarray, frame: int = FRAME,
                        hop: int = HOP) -> tuple[np.ndarray, int]:
    """Per-frame R * conj(L) of Hann frames zero-padded to 2 * frame: (frames, bins), nfft."""
    win = np.hanning(frame)
    nfft = 2 * frame
    L = np.fft.rfft(_frames(left, frame, hop) * win, nfft)
    R = np.fft.rfft(_frames(right, frame, hop) * win, nfft)
    return R * np.conj(L), nfft


def gcc_phat_welch(left: np.ndarray, right: np.ndarray, max_lag: int | None = None) -> float:
    max_lag = max_lag_samples() if max_lag is None else max_lag
    g, nfft = frame_cross_spectra(left, right)
    return peak_from_cross_spectrum(g.sum(axis=0), nfft, max_lag)


# --------------------------------------------------------------------- pyroomacoustics DOA
def _half_plane(mic_l, mic_r) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Mic positions (2, 2) in the x-y plane, the unit axis u (left -> right), the broadside
    normal n (u rotated +90 deg, into the room as generate.source_position) and the spacing."""
    left = np.asarray(mic_l, float)[:2]
    right = np.asarray(mic_r, float)[:2]
    u = right - left
    d = float(np.linalg.norm(u))
    u = u / d
    n = np.array([-u[1], u[0]])
    return np.c_[left, right], u, n, d


_DOA_CACHE: dict = {}


def _doa_object(algo: str, mic_l, mic_r, nfft: int, theta_deg: np.ndarray):
    """A pyroomacoustics DOA object searching the azimuths theta_deg (generate.py's sign:
    positive toward the left mic, 0 = broadside into the room)."""
    import pyroomacoustics as pra
    key = (algo, tuple(mic_l), tuple(mic_r), nfft, len(theta_deg), float(theta_deg[0]))
    if key not in _DOA_CACHE:
        if len(_DOA_CACHE) > 256:
            _DOA_CACHE.clear()
        L, u, n, d = _half_plane(mic_l, mic_r)
        theta = np.deg2rad(theta_deg)
        dirs = np.cos(theta)[:, None] * n[None, :] - np.sin(theta)[:, None] * u[None, :]
        azimuth = np.arctan2(dirs[:, 1], dirs[:, 0])   # pyroomacoustics: angle from +x
        _DOA_CACHE[key] = (pra.doa.algorithms[algo](L, RATE, nfft, c=C, num_src=1,
                                                    azimuth=azimuth, dim=2), d)
    return _DOA_CACHE[key]


COARSE_STEP_DEG = 1.0


def doa_delay(algo: str, left: np.ndarray, right: np.ndarray, mic_l, mic_r,
              nfft: int = FRAME, hop: int = HOP) -> float:
    """Delay (samples) from a pyroomacoustics DOA ('SRP' or 'NormMUSIC') on a 2-mic clip.

    The azimuth search is coarse to fine, both stages by pyroomacoustics: a 1-degree grid over
    the half plane [-90, 90], then a GRID_STEP_DEG grid over +-1 degree around the coarse
    maximum (pyroomacoustics' DOA loops over grid points in Python: one 0.1-degree grid over
    the half plane costs ~8x more). The global maximum of the spatial spectrum (grid ends
    included) is the answer."""
    win = np.hanning(nfft)
    X = np.stack([np.fft.rfft(_frames(x, nfft, hop) * win, nfft).T for x in (left, right)])
    coarse = np.arange(-90.0, 90.0 + COARSE_STEP_DEG / 2, COARSE_STEP_DEG)
    th = _doa_argmax(algo, X, mic_l, mic_r, nfft, coarse)
    lo = max(-90.0, th - COARSE_STEP_DEG)
    hi = min(90.0, th + COARSE_STEP_DEG)
    fine = np.round(np.arange(lo, hi + GRID_STEP_DEG / 2, GRID_STEP_DEG), 6)
    th = _doa_argmax(algo, X, mic_l, mic_r, nfft, fine)
    d = float(np.linalg.norm(np.subtract(mic_r, mic_l)[:2]))
    return d * math.sin(math.radians(th)) / C * RATE


def _doa_argmax(algo, X, mic_l, mic_r, nfft, theta_deg) -> float:
    obj, _ = _doa_object(algo, mic_l, mic_r, nfft, theta_deg)
    obj.locate_sources(X, num_src=1, freq_range=list(FREQ_RANGE))
    vals = np.asarray(obj.grid.values, float)
    if vals.shape != theta_deg.shape or not np.all(np.isfinite(vals)):
        raise ValueError(f"{algo}: no finite spatial spectrum")
    return float(theta_deg[int(np.argmax(vals))])


# --------------------------------------------------------------------- live reference
class LiveGccPhat:
    """Exponentially averaged cross-spectrum GCC-PHAT over a whole stream.

    Frame k covers samples [k*hop, k*hop + frame). After frame k the average is
    S = a * S + (1 - a) * G_k with a = exp(-hop / (tau * rate)). ``delay_at(t)`` reads the
    average after the last frame that ends at or before t seconds (nan before the first)."""

    def __init__(self, left: np.ndarray, right: np.ndarray, tau_s: float = LIVE_TAU_S,
                 frame: int = FRAME, hop: int = HOP, max_lag: int | None = None):
        self.max_lag = max_lag_samples() if max_lag is None else max_lag
        self.frame, self.hop = frame, hop
        g, self.nfft = frame_cross_spectra(left, right, frame, hop)
        if len(left) < frame:
            g = g[:0]
        a = math.exp(-hop / (tau_s * RATE))
        avg = np.empty_like(g)
        s = np.zeros(g.shape[1], complex)
        for k in range(len(g)):
            s = a * s + (1.0 - a) * g[k]
            avg[k] = s
        self.avg = avg

    def delay_at(self, t_s: float) -> float:
        end = int(round(t_s * RATE))
        k = (end - self.frame) // self.hop
        if k < 0 or len(self.avg) == 0:
            return float("nan")
        k = min(k, len(self.avg) - 1)
        return peak_from_cross_spectrum(self.avg[k], self.nfft, self.max_lag)


REFERENCES = ("ref-gcc-phat-whole", "ref-gcc-phat-geo", "ref-gcc-phat-welch", "ref-srp-phat",
              "ref-normmusic")


def reference_delays(left: np.ndarray, right: np.ndarray, mic_l, mic_r,
                     which=REFERENCES) -> dict[str, float]:
    """{label: delay in samples} for the offline references on one clip."""
    out = {}
    for lab in which:
        if lab == "ref-gcc-phat-whole":
            out[lab] = gcc_phat_whole(left, right)
        elif lab == "ref-gcc-phat-geo":
            d = float(np.linalg.norm(np.asarray(mic_r, float) - np.asarray(mic_l, float)))
            out[lab] = gcc_phat_whole(left, right, max_lag=geometry_max_lag(d))
        elif lab == "ref-gcc-phat-welch":
            out[lab] = gcc_phat_welch(left, right)
        elif lab == "ref-srp-phat":
            out[lab] = doa_delay("SRP", left, right, mic_l, mic_r)
        elif lab == "ref-normmusic":
            out[lab] = doa_delay("NormMUSIC", left, right, mic_l, mic_r)
        else:
            raise ValueError(f"unknown reference {lab}")
    return out
