#!/usr/bin/env python3
"""A copy of a tuning set with low-frequency rumble and DC offsets added to every clip.

Rooms with HVAC, traffic or machinery, a robot's own motors, wind and handling put most of a
recording's power below 100-150 Hz, and cheap ADCs add a DC offset. At array spacings that
band carries almost no delay information, but it can dominate the power a window sees. This
writes such a variant of a set made by eval/devset.py (or any set with a truth.csv) so that
configurations can be compared on it with eval/tune.py; the truth is unchanged.

Per clip: noise low-passed at a cut-off drawn from --cutoff (4th-order Butterworth), a shared
part plus an independent part per channel (at these wavelengths the two mics see nearly the same
rumble: coherence --coherence), scaled to a rumble-to-clip power ratio drawn from --level-db,
plus a DC offset per channel of up to --dc times the clip's RMS.

    python3 eval/rumble.py --data eval/out/dev --out eval/out/dev-rumble --seed 9009
"""
from __future__ import annotations

import argparse
import csv
import shutil
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import butter, sosfilt

RATE = 16000


def rumble(n: int, rng, cutoff: float, coherence: float) -> np.ndarray:
    """(n, 2) low-passed noise with the given inter-channel coherence of its shared part."""
    sos = butter(4, cutoff, "lowpass", fs=RATE, output="sos")
    pre = 4 * RATE // max(1, int(cutoff))  # let the filter settle before the clip starts
    shared = sosfilt(sos, rng.standard_normal(n + pre))[pre:]
    own = np.stack([sosfilt(sos, rng.standard_normal(n + pre))[pre:] for _ in range(2)], 1)
    a = np.sqrt(coherence)
    b = np.sqrt(max(0.0, 1 - coherence))
    return a * shared[:, None] + b * own


def add_rumble(x: np.ndarray, rng, level_db: tuple[float, float], cutoff: tuple[float, float],
               coherence: float, dc: float) -> tuple[np.ndarray, dict]:
    """x (n, 2) float -> x with rumble and offsets added, and what was drawn."""
    n = len(x)
    fc = float(rng.uniform(*cutoff))
    lv = float(rng.uniform(*level_db))
    r = rumble(n, rng, fc, coherence)
    p_clip = float(np.mean(x ** 2))
    p_r = float(np.mean(r ** 2))
    if p_clip <= 0 or p_r <= 0:
        return x, {"rumble_db": "", "rumble_hz": ""}
    r *= np.sqrt(p_clip * 10 ** (lv / 10) / p_r)
    offsets = rng.uniform(-dc, dc, 2) * np.sqrt(p_clip)
    return x + r + offsets[None, :], {"rumble_db": f"{lv:.2f}", "rumble_hz": f"{fc:.1f}"}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="a set with truth.csv (e.g. eval/out/dev)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=9009)
    ap.add_argument("--level-db", type=float, nargs=2, default=(-10.0, 20.0),
                    help="rumble-to-clip power ratio range, dB")
    ap.add_argument("--cutoff", type=float, nargs=2, default=(40.0, 150.0),
                    help="rumble low-pass cut-off range, Hz")
    ap.add_argument("--coherence", type=float, default=0.9)
    ap.add_argument("--dc", type=float, default=0.5, help="largest DC offset, x clip RMS")
    a = ap.parse_args(argv)
    src, out = Path(a.data), Path(a.out)
    truth = src / "truth.csv"
    if not truth.is_file():
        print(f"rumble: no truth.csv in {src}", file=sys.stderr)
        return 2
    rows = list(csv.DictReader(truth.open()))
    if not rows:
        print(f"rumble: {truth} lists no clips", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(a.seed)
    fields = list(rows[0].keys()) + ["rumble_db", "rumble_hz"]
    for r in rows:
        x, sr = sf.read(src / r["file"], dtype="float64", always_2d=True)
        if sr != RATE or x.shape[1] != 2:
            print(f"rumble: {r['file']}: expected 16-kHz stereo, got {sr} Hz x {x.shape[1]}", file=sys.stderr)
            return 2
        y, drawn = add_rumble(x, rng, tuple(a.level_db), tuple(a.cutoff), a.coherence, a.dc)
        peak = float(np.max(np.abs(y)))
        if peak > 0.99:  # keep it inside full scale; the truth does not depend on the gain
            y *= 0.99 / peak
        sf.write(out / r["file"], y.astype(np.float32), RATE, subtype="FLOAT")
        r.update(drawn)
    with (out / "truth.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    for extra in ("rooms.json",):
        if (src / extra).exists():
            shutil.copy(src / extra, out / extra)
    print(f"wrote {len(rows)} clips with rumble to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
