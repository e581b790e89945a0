"""Validation clips that are neither training nor evaluation material.

    python3 -m tded_train.valset --out ../data/val_v2 --bank ../data/rirbank/val.npz \
        --speech ../data/pools/val_speech.npz --music ../data/pools/val_music.npz \
        --noise ../data/pools/val_noise.npz --n 200 --seed 7

Rooms, microphone pairs and spacings: the validation RIR bank (its own seed; like every bank,
no room near the evaluation's three, see tded_train/rirbank.py).  Sources: the validation pools
(klettres-data speech, colobot music; the training pools are ktuberling + espeak-ng speech and
wesnoth/singularity music, the evaluation's are pocketsphinx / fillets-ng / tuxpaint speech and
fretsonfire / drascula music).  Noise: the validation half of the recorded-noise pool and the
synthetic kinds of tded_train/supervised.py.  SNR cycles 30, 20, 10, 0, -10 dB; one source per
clip (no distractor); 1151 samples (128 step-1 windows per channel) as the eval generator's
``small`` clips, in the same layout (``truth.csv`` + 16-bit WAVs), so ``tded_train.val`` and
``--val-clips`` read it unchanged.
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
import soundfile as sf

from .pools import Pool
from .rirbank import RATE, load_bank
from .supervised import SupConfig, SupSampler

SNRS = (30.0, 20.0, 10.0, 0.0, -10.0)


def make_valset(out, bank, speech, music=(), noise=None, n: int = 200, seed: int = 7,
                length: int = 1151, music_frac: float = 0.25):
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = SupConfig(p_mix=0.0, music_frac=music_frac)
    s = SupSampler(bank, speech, music, noise, cfg, seed=seed, length=length)
    rows = []
    for i in range(n):
        snr = SNRS[i % len(SNRS)]
        s.cfg.snr_range = (snr, snr)
        x, d = s.example()
        name = f"v{i:04d}.wav"
        sf.write(out / name, x.T, RATE, subtype="PCM_16")
        rows.append({"file": name, "delay_samples": f"{d:.6f}", "delay_ms": f"{d / RATE * 1000:.6f}",
                     **{k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in s.info.items()}})
    with open(out / "truth.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--bank", required=True)
    ap.add_argument("--speech", nargs="+", required=True)
    ap.add_argument("--music", nargs="*", default=[])
    ap.add_argument("--noise", default="")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args(argv)
    rows = make_valset(a.out, load_bank(a.bank), [Pool.load(p) for p in a.speech],
                       [Pool.load(p) for p in a.music], Pool.load(a.noise) if a.noise else None,
                       a.n, a.seed)
    print(f"wrote {len(rows)} clips to {a.out}")


if __name__ == "__main__":
    main()
