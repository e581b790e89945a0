"""Dry mono source / noise pools for the supervised stage, cached as one .npz per pool.

    python3 -m tded_train.pools --out ../data/pools/train_speech.npz DIR_OR_FILE... \
        [--split train|val --split-mod 4]

Every audio file under the given folders (anything libsndfile reads, any rate, any channel
count) is folded to mono, resampled to 16 kHz, peak-normalised to 0.5 and kept if it is at least
``--min-seconds`` long and not near silent.  ``--split`` keeps a deterministic half of the files
(by a hash of the file name: ``val`` = hash % split-mod == 0, ``train`` = the rest), so one
folder can give two disjoint pools.

Pools used for v2 (see train/README.md, all from Debian packages, none used by the evaluation):
train speech = ktuberling-data (words, ~20 languages) + espeak-ng utterances; validation
speech = klettres-data (letters and syllables, other speakers); train music = wesnoth +
singularity mono fold-downs; validation music = colobot music; recorded noise = colobot sound
effects split by file-name hash into train / validation halves.
"""
from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path
from typing import List

import numpy as np
import soundfile as sf

from .data import AUDIO_EXT, RATE, resample


def _files(paths) -> List[Path]:
    out = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(q for q in p.rglob("*") if q.suffix.lower() in AUDIO_EXT and q.is_file())
        elif p.is_file():
            out.append(p)
    return out


def in_split(path: Path, split: str, mod: int) -> bool:
    if split == "all":
        return True
    h = int(hashlib.sha1(path.name.encode()).hexdigest()[:8], 16) % mod
    return (h == 0) if split == "val" else (h != 0)


def read_mono(path: Path, max_seconds: float = 0.0) -> np.ndarray:
    sr0 = sf.info(str(path)).samplerate
    frames = int(max_seconds * sr0) if max_seconds else -1
    x, sr = sf.read(str(path), dtype="float32", always_2d=True, frames=frames)
    x = resample(x.mean(axis=1, keepdims=True).astype(np.float64), sr, RATE)[:, 0]
    return x.astype(np.float32)


def build_pool(paths, split: str = "all", split_mod: int = 4, min_seconds: float = 0.3,
               max_seconds: float = 30.0, verbose: bool = True) -> dict:
    clips, names = [], []
    for p in _files(paths):
        if not in_split(p, split, split_mod):
            continue
        try:
            x = read_mono(p, max_seconds)
        except Exception as e:
            print(f"note: skipping {p}: {e}", file=sys.stderr)
            continue
        x = x[: int(max_seconds * RATE)]
        if len(x) < min_seconds * RATE or np.sqrt((x ** 2).mean()) < 1e-3:
            continue
        clips.append((x / max(np.abs(x).max(), 1e-6) * 0.5).astype(np.float16))
        names.append(str(p.name))
    assert clips, f"no usable audio in {paths}"
    offs = np.cumsum([0] + [len(c) for c in clips])
    if verbose:
        print(f"pool: {len(clips)} files, {offs[-1] / RATE / 3600:.2f} h", file=sys.stderr)
    return {"audio": np.concatenate(clips), "offsets": offs.astype(np.int64),
            "names": np.array(names)}


class Pool:
    """Random segments of a pool (concatenated float16 audio + offsets)."""

    def __init__(self, z: dict):
        self.audio = z["audio"]
        self.offs = z["offsets"]
        self.lens = np.diff(self.offs)
        self.n = len(self.lens)

    @staticmethod
    def load(path) -> "Pool":
        z = np.load(path)
        return Pool({k: z[k] for k in ("audio", "offsets")})

    @staticmethod
    def from_arrays(clips) -> "Pool":
        offs = np.cumsum([0] + [len(c) for c in clips]).astype(np.int64)
        return Pool({"audio": np.concatenate(clips).astype(np.float16), "offsets": offs})

    def segment(self, length: int, rng: np.random.Generator, min_rms: float = 0.01,
                check: int = 0) -> np.ndarray:
        """A random `length`-sample piece; short files are zero-padded at a random place (the
        silence before/after an utterance is real)."""
        for _ in range(10):
            i = int(rng.integers(self.n))
            a, L = self.offs[i], self.lens[i]
            out = np.zeros(length, np.float32)
            if L >= length:
                o = int(rng.integers(0, L - length + 1))
                out[:] = self.audio[a + o: a + o + length]
            else:
                o = int(rng.integers(0, length - L + 1))
                out[o: o + L] = self.audio[a: a + L]
            tail = out[-check:] if check else out
            if np.sqrt((tail ** 2).mean()) >= min_rms:
                return out
        return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("paths", nargs="+")
    ap.add_argument("--out", required=True)
    ap.add_argument("--split", choices=["all", "train", "val"], default="all")
    ap.add_argument("--split-mod", type=int, default=4)
    ap.add_argument("--min-seconds", type=float, default=0.3)
    ap.add_argument("--max-seconds", type=float, default=30.0)
    a = ap.parse_args(argv)
    z = build_pool(a.paths, a.split, a.split_mod, a.min_seconds, a.max_seconds)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    np.savez(a.out, **z)
    print(f"wrote {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
