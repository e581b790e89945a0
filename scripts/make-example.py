#!/usr/bin/env python3
"""Makes examples/demo.wav: a short two-microphone recording with a known direction.

Speech from espeak-ng is rendered in a small shoebox room with pyroomacoustics (image method,
a few reflections, a little sensor noise) onto two omnidirectional microphones 0.10 m apart.

Ground truth (the defaults below; the script prints them):
  - array: left mic at x = -0.05 m, right mic at x = +0.05 m (relative to the array centre),
    axis along x; mic distance d = 0.10 m; c = 343 m/s; fs = 16 kHz
  - source 2.0 m from the array centre at azimuth +30 deg, measured from broadside, positive
    toward the LEFT mic (the convention of `tded`: positive delay = right channel later)
  - true direct-path delay tau = d sin(30 deg) / c = 0.1458 ms = 2.332 samples at 16 kHz
    (right channel later), so `tded` should report delay_ms ~ +0.146 and azimuth_deg ~ +30.
Output: 16-bit PCM stereo, 16 kHz, 8 s (~512 KB).

Usage: scripts/make-example.py [--out examples/demo.wav] [--azimuth 30] [--seconds 8]
"""
import argparse
import math
import shutil
import subprocess
import sys
import tempfile
import wave

import numpy as np

FS = 16000
MIC_D = 0.10
C = 343.0
TEXT = ("This is the live time delay estimation demo. Two microphones hear this voice "
        "a fraction of a millisecond apart, and the daemon turns that delay into a direction. "
        "The speaker stands thirty degrees to the left.")


def speech(seconds: float) -> np.ndarray:
    if shutil.which("espeak-ng") is None:
        sys.exit("make-example: espeak-ng is not installed (apt-get install espeak-ng)")
    with tempfile.NamedTemporaryFile(suffix=".wav") as f:
        subprocess.run(["espeak-ng", "-s", "150", "-w", f.name, TEXT], check=True)
        with wave.open(f.name) as w:
            rate = w.getframerate()
            x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64) / 32768
    if rate != FS:
        from scipy.signal import resample_poly
        g = math.gcd(rate, FS)
        x = resample_poly(x, FS // g, rate // g)
    n = int(seconds * FS)
    reps = int(math.ceil(n / len(x)))
    return np.tile(x, reps)[:n]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="examples/demo.wav")
    ap.add_argument("--azimuth", type=float, default=30.0, help="degrees, positive toward the left mic")
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--distance", type=float, default=2.0, help="source distance from array centre, m")
    a = ap.parse_args()
    import pyroomacoustics as pra

    rng = np.random.default_rng(7)
    x = speech(a.seconds)
    room_dim = [6.0, 5.0, 3.0]
    centre = np.array([3.0, 2.0, 1.2])
    # mics along x; left mic at -x. Azimuth 0 = broadside (+y); +az rotates toward the left (-x).
    mics = np.array([centre + [-MIC_D / 2, 0, 0], centre + [MIC_D / 2, 0, 0]]).T
    th = math.radians(a.azimuth)
    src = centre + a.distance * np.array([-math.sin(th), math.cos(th), 0.0])
    room = pra.ShoeBox(room_dim, fs=FS, materials=pra.Material(0.6), max_order=3, air_absorption=False)
    room.add_source(src.tolist(), signal=x)
    room.add_microphone_array(pra.MicrophoneArray(mics, FS))
    room.simulate()
    y = room.mic_array.signals[:, : len(x)]
    y = y / np.max(np.abs(y)) * 0.5
    y = y + rng.normal(0, 10 ** (-50 / 20) * 0.5, y.shape)  # ~ -56 dBFS sensor noise
    pcm = np.clip(np.round(y.T * 32767), -32768, 32767).astype("<i2")
    with wave.open(a.out, "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(FS)
        w.writeframes(pcm.tobytes())
    dl = np.linalg.norm(src - mics[:, 0])
    dr = np.linalg.norm(src - mics[:, 1])
    tau = (dr - dl) / C
    far = MIC_D * math.sin(th) / C
    print(f"wrote {a.out}: {len(x) / FS:.1f} s, 16 kHz, 16-bit stereo")
    print(f"true direct-path delay (right later): {tau * 1e3:.4f} ms = {tau * FS:.3f} samples "
          f"(far-field {far * 1e3:.4f} ms), azimuth {a.azimuth:+.1f} deg (positive toward left mic)")


if __name__ == "__main__":
    main()
