#!/usr/bin/env python3
"""Recorded tuning sources for `eval/devset.py --sources`: the training data's *validation*
pools (train/fetch_data.sh + train/prepare_v2.sh: klettres speech, colobot music), written as
16-kHz mono WAVs. They share nothing with the evaluation's sources (eval/fetch_sources.sh) or
with the training pools.

    python3 eval/devsources.py --pools data/pools --out eval/out/devsources
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import soundfile as sf


def write_pool(npz: Path, out: Path, min_seconds: float, limit: int) -> int:
    z = np.load(npz)
    audio, offsets, names = z["audio"], z["offsets"], z["names"]
    out.mkdir(parents=True, exist_ok=True)
    n = 0
    for i, name in enumerate(names):
        x = audio[offsets[i]:offsets[i + 1]].astype(np.float32)
        if len(x) < min_seconds * 16000 or not np.any(x):
            continue
        sf.write(out / f"{name}.wav", x, 16000, subtype="PCM_16")
        n += 1
        if n >= limit:
            break
    return n


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pools", required=True, help="train/prepare_v2.sh's pools folder")
    ap.add_argument("--out", required=True)
    ap.add_argument("--min-seconds", type=float, default=2.5)
    ap.add_argument("--limit", type=int, default=400, help="most files per kind")
    a = ap.parse_args(argv)
    pools, out = Path(a.pools), Path(a.out)
    ns = write_pool(pools / "val_speech.npz", out / "speech", a.min_seconds, a.limit)
    nm = write_pool(pools / "val_music.npz", out / "music", a.min_seconds, a.limit)
    print(f"wrote {ns} speech and {nm} music files to {out}")
    return 0 if ns else 2


if __name__ == "__main__":
    raise SystemExit(main())
