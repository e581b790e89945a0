"""A body between the microphones: the rigid-sphere head model, for training renderings.

Arrays on a head, a robot or a device housing do not see free-field delays: sound bends around
the body, so the delay between the microphones depends on frequency (on a sphere of radius a,
3 a/c sin(phi) at low frequencies, about a/c (phi + sin(phi)) at high ones, Kuhn 1977). The
simulated rooms of the RIR bank have point microphones in free air only. ``sphere_hrirs`` gives
the pair of impulse responses of two microphones at opposite ends of a rigid sphere (the
"ears") for a far source at lateral angle phi (+ toward the left ear), from the classical series
solution (Rayleigh; Duda & Martens 1998, eq. 4 at infinite distance):

    H(mu, theta) = (1 / mu^2) sum_m i^(m-1) (2m + 1) P_m(cos theta) / h2'_m(mu),
    mu = 2 pi f a / c,  theta = angle between the source direction and the microphone,
    h2_m = j_m - i y_m (spherical Hankel function of the second kind),

relative to the free-field pressure at the sphere's centre, in numpy's e^{+i omega t} time
convention. The tests pin it: H -> 1 at low frequencies, the microphone facing the source leads
and is louder at high frequencies (up to +6 dB), the far one is shadowed.

``broadband_itd`` is the convention for the delay of such a pair, the same as the evaluation's
KEMAR check (eval/kemar.py): where the two impulse responses' cross-correlation peaks
(band-limited, on a grid 16x finer than the sampling). A flat-weighted GCC-PHAT on broadband
sound finds about this delay; a weighting that favours low frequencies finds a larger one.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.special import eval_legendre, spherical_jn, spherical_yn

RATE = 16000
C = 343.0
TAPS = 128          # impulse response length at 16 kHz (the sphere's response is < 2 ms)
CENTRE = 48         # the centre's free-field arrival time within the taps


def sphere_response(f: np.ndarray, theta: float, a: float, c: float = C) -> np.ndarray:
    """Complex pressure at a point of a rigid sphere (radius a m) at angle theta (rad) from a far
    source's direction, relative to the free field at the centre; f in Hz (f[0] may be 0)."""
    f = np.asarray(f, float)
    mu = 2 * math.pi * f * a / c
    top = float(mu.max()) if len(mu) else 0.0
    m = np.arange(int(top + 4 * top ** (1 / 3) + 12) + 1)[:, None]
    ok = mu > 1e-6
    z = np.where(ok, mu, 1.0)[None, :]
    with np.errstate(all="ignore"):   # high orders at low mu: y'_m overflows, its term is 0
        dh = spherical_jn(m, z, derivative=True) - 1j * spherical_yn(m, z, derivative=True)
        terms = 1j ** (m - 1) * (2 * m + 1) * eval_legendre(m, np.cos(theta)) / dh
    terms[~np.isfinite(terms)] = 0
    return np.where(ok, terms.sum(0) / z[0] ** 2, 1.0 + 0j)


def sphere_hrirs(phi: float, a: float, rate: int = RATE, taps: int = TAPS, c: float = C) -> np.ndarray:
    """[2, taps] impulse responses (left, right) of microphones at opposite ends of a rigid sphere
    for a far source at lateral angle phi (rad, + toward the left microphone); the centre's
    free-field arrival is at sample CENTRE."""
    n = 4 * taps
    f = np.fft.rfftfreq(n, 1.0 / rate)
    out = []
    for theta in (math.pi / 2 - phi, math.pi / 2 + phi):   # left mic at +90 deg, right at -90
        H = sphere_response(f, theta, a, c)
        H[-1] = H[-1].real                                  # a real Nyquist bin
        h = np.fft.irfft(H * np.exp(-2j * math.pi * f * CENTRE / rate), n)
        out.append(h[:taps] * np.hanning(2 * taps)[taps:] ** 0.25)
    return np.stack(out)


def broadband_itd(pair: np.ndarray, rate: float = RATE, up: int = 16) -> float:
    """Delay of pair[1] (right) after pair[0] (left) in samples at `rate`: where their
    cross-correlation peaks, band-limited interpolation on a grid `up` times finer."""
    n = 2 * pair.shape[-1]
    cc = np.fft.irfft(np.fft.rfft(pair[1], n) * np.conj(np.fft.rfft(pair[0], n)), n * up)
    lag = int(np.argmax(np.roll(cc, n * up // 2))) - n * up // 2
    return lag / up


def effective_spacing(a: float, rate: int = RATE, c: float = C) -> float:
    """The free-field spacing (m) whose end-fire delay is this sphere's broadband ITD at 90 deg:
    what a user gives tded as the array's spacing (the range its "auto" lag search covers)."""
    return broadband_itd(sphere_hrirs(math.pi / 2, a, rate), rate) / rate * c
