#!/usr/bin/env python3
"""Direction-step latency against steady-state accuracy of the live daemon, per configuration.

A talker (espeak-ng speech, 20 dB SNR, free field) sits at delay -4 samples for 3 s, then jumps
to +4 samples (the 8-sample jump of issue 10) for 3 s. The daemon replays the clip unpaced
(`tded run --input CLIP --echo`) and for each configuration this prints:
- latency: time from the jump until the published (smoothed) delay is within 0.6 sample of the
  new delay and stays there;
- steady MAE: smoothed error over the last 2 s of each half, samples.

With `--clips N` (N > 1) clip i takes the next 6 s of the voices, its own noise (seed 3 + i) and
alternates the jump's direction (odd clips jump from +4 to -4); the latency columns are then the
median and the worst over the clips, and the steady MAE their mean. One clip decides a latency to
within the 50-ms update, so compare configurations on several.

    python3 eval/step_response.py --variant 'tau0.3=engine.post=pooled engine.memory_s=0.3'
    python3 eval/step_response.py --clips 12 --variant 'default=' --variant 'coh=engine.pooling=phat+coh'
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import sources as src_mod  # noqa: E402

RATE = 16000


def delayed(x: np.ndarray, d: float) -> np.ndarray:
    """x delayed by d samples (exact band-limited shift, circular over a padded length)."""
    n = len(x)
    N = 2 * n
    X = np.fft.rfft(x, N)
    k = np.arange(len(X))
    return np.fft.irfft(X * np.exp(-2j * np.pi * k * d / N), N)[:n]


def make_clip(path: Path, seed: int = 3, d0: float = -4, d1: float = 4, seconds: float = 3.0,
              snr_db: float = 20, piece: int = 0) -> float:
    rng = np.random.default_rng(seed)
    pool = [s for s in src_mod.load_pool(None, ("synthetic",)) if len(s.audio) > 0]
    dry = np.concatenate([s.audio for s in pool])
    n = int(seconds * RATE)
    o = (piece * 2 * n) % max(1, len(dry) - 2 * n)
    a, b = dry[o:o + n], dry[o + n:o + 2 * n]
    halves = []
    for seg, d in ((a, d0), (b, d1)):
        left = seg
        right = delayed(seg, d)
        halves.append(np.stack([left, right], 1))
    x = np.concatenate(halves)
    p = float(np.mean(x ** 2))
    x = x + rng.standard_normal(x.shape) * np.sqrt(p / 10 ** (snr_db / 10))
    x *= 0.5 / np.max(np.abs(x))
    sf.write(str(path), x.astype(np.float32), RATE, subtype="FLOAT")
    return seconds


def run(tded: str, clip: Path, settings: list[str], tmp: Path) -> list[dict]:
    lines = ["[engine]", "mic_distance = 0.3"]
    for kv in settings:
        k, _, v = kv.partition("=")
        try:
            float(v)
        except ValueError:
            v = json.dumps(v)
        lines.append(f"{k.split('.', 1)[1]} = {v}")
    cfg = tmp / "c.toml"
    cfg.write_text("\n".join(lines) + "\n")
    p = subprocess.run([tded, "run", "--config", str(cfg), "--input", str(clip), "--echo",
                        "--socket", str(tmp / "s.sock"), "--log-level", "error"],
                       capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        raise SystemExit(f"tded run failed: {p.stderr.strip()}")
    return [json.loads(x) for x in p.stdout.splitlines()]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tded", default=str(HERE.parent / ".build" / "release" / "tded"))
    ap.add_argument("--variant", action="append", required=True, help="LABEL=engine.key=value ...")
    ap.add_argument("--clips", type=int, default=1, help="clips per configuration (default 1)")
    a = ap.parse_args(argv)
    if a.clips < 1:
        ap.error("--clips must be at least 1")
    tmp = Path(tempfile.mkdtemp(prefix="tded-step-"))
    clips = []
    for i in range(a.clips):
        d0, d1 = (-4.0, 4.0) if i % 2 == 0 else (4.0, -4.0)
        clip = tmp / f"step{i}.wav"
        clips.append((clip, make_clip(clip, seed=3 + i, d0=d0, d1=d1, piece=i), d0, d1))
    if a.clips == 1:
        print("| configuration | latency to within 0.6 sample, ms | steady MAE before, samples | steady MAE after, samples |")
        print("|---|---|---|---|")
    else:
        print(f"| configuration | latency to within 0.6 sample, ms: median of {a.clips} | worst | "
              "steady MAE before, samples | steady MAE after, samples |")
        print("|---|---|---|---|---|")
    for v in a.variant:
        label, _, rest = v.partition("=")
        lats, before, after = [], [], []
        for clip, half, d0, d1 in clips:
            sm = [(j["t"], j["delay_ms"] / (1000.0 / RATE)) for j in run(a.tded, clip, rest.split(), tmp)]
            lats.append(settle_ms(sm, half, d1))
            before += [abs(d - d0) for t, d in sm if half - 2 <= t < half]
            after += [abs(d - d1) for t, d in sm if 2 * half - 2 <= t <= 2 * half]
        fmt = lambda x: "never" if x == float("inf") else f"{x:.0f}"  # noqa: E731
        lat = fmt(lats[0]) if a.clips == 1 else f"{fmt(float(np.median(lats)))} | {fmt(max(lats))}"
        print(f"| {label} | {lat} | {np.mean(before):.3f} | {np.mean(after):.3f} |")
    return 0


def settle_ms(sm: list[tuple[float, float]], half: float, d1: float, tol: float = 0.6) -> float:
    """ms from the jump at `half` s until the published delay (samples) is within `tol` of d1
    and stays there; inf if it never does."""
    for i, (t, _) in enumerate(sm):
        if t > half and all(abs(dd - d1) <= tol for _, dd in sm[i:]):
            return (t - half) * 1000
    return float("inf")


if __name__ == "__main__":
    sys.exit(main())
