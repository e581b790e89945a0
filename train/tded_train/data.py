"""Unlabeled stereo training data.

* ``load_stereo_folder(root)``: every audio file under ``root`` (wav/flac/ogg/...: whatever
  libsndfile reads), any sample rate (resampled to 16 kHz with a polyphase filter); files that are
  not 2-channel are skipped with a note.  Decoded tracks are cached as int16 .npy beside a
  ``.tded_cache`` folder so later runs start instantly.
* ``load_sim_bank(path)``: simulated stereo clips written by ``tded_train.sim``.
* ``CropSampler``: random 1216-sample stereo crops, track chosen proportionally to length, near
  silent crops rejected.
"""
from __future__ import annotations

import hashlib
import sys
from math import gcd
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np
import soundfile as sf
import torch
from scipy.signal import resample_poly

RATE = 16000
AUDIO_EXT = {".wav", ".flac", ".ogg", ".oga", ".opus", ".aiff", ".aif", ".mp3"}


def resample(x: np.ndarray, sr: int, rate: int = RATE) -> np.ndarray:
    """x [n, ch] float -> resampled along axis 0."""
    if sr == rate:
        return x
    g = gcd(sr, rate)
    return resample_poly(x, rate // g, sr // g, axis=0)


def read_stereo(path: Path, rate: int = RATE) -> Optional[np.ndarray]:
    """-> int16 [2, n] at `rate`, or None (with a note) if the file is not stereo."""
    info = sf.info(str(path))
    if info.channels != 2:
        print(f"note: skipping {path} ({info.channels} channel(s), need stereo)", file=sys.stderr)
        return None
    x, sr = sf.read(str(path), dtype="float32", always_2d=True)
    x = resample(x, sr, rate)
    return (np.clip(x, -1, 1) * 32767).astype(np.int16).T.copy()


def load_stereo_folder(root, rate: int = RATE, min_seconds: float = 1.0,
                       cache: bool = True, verbose: bool = True) -> List[np.ndarray]:
    root = Path(root)
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_EXT and p.is_file())
    cdir = root / ".tded_cache"
    tracks = []
    for p in files:
        key = hashlib.sha1(f"{p.relative_to(root)}|{p.stat().st_size}|{rate}".encode()).hexdigest()
        cp = cdir / f"{key[:16]}.npy"
        x = None
        if cache and cp.exists():
            x = np.load(cp, mmap_mode="r")
        else:
            try:
                x = read_stereo(p, rate)
            except Exception as e:  # unreadable file: say so and go on
                print(f"note: skipping {p}: {e}", file=sys.stderr)
                continue
            if x is None:
                continue
            if cache:
                cdir.mkdir(exist_ok=True)
                np.save(cp, x)
        if x.shape[1] >= min_seconds * rate:
            tracks.append(x)
    if verbose:
        hours = sum(t.shape[1] for t in tracks) / rate / 3600
        print(f"{root}: {len(tracks)} stereo tracks, {hours:.2f} h", file=sys.stderr)
    return tracks


def load_sim_bank(path) -> List[np.ndarray]:
    z = np.load(path)
    return [c for c in z["audio"]]  # each int16 [2, n]


class CropSampler:
    """Random stereo crops of `length` samples from int16 tracks [2, n]."""

    def __init__(self, tracks: Sequence[np.ndarray], length: int, seed: int = 0,
                 min_rms: float = 3e-3):
        self.tracks = [t for t in tracks if t.shape[1] >= length]
        assert self.tracks, "no track long enough"
        lens = np.array([t.shape[1] - length + 1 for t in self.tracks], dtype=np.float64)
        self.p = lens / lens.sum()
        self.length = length
        self.rng = np.random.default_rng(seed)
        self.min_rms = min_rms

    def crop(self) -> np.ndarray:
        for _ in range(20):
            t = self.tracks[self.rng.choice(len(self.tracks), p=self.p)]
            o = self.rng.integers(0, t.shape[1] - self.length + 1)
            x = np.asarray(t[:, o: o + self.length], dtype=np.float32) / 32768.0
            if np.sqrt((x ** 2).mean()) >= self.min_rms:
                return x
        return x

    def batch(self, n: int) -> torch.Tensor:
        return torch.from_numpy(np.stack([self.crop() for _ in range(n)]))  # [n, 2, length]

    def state(self):
        return self.rng.bit_generator.state

    def set_state(self, s):
        self.rng.bit_generator.state = s


class MixedSampler:
    """Draws each example from one of several samplers with given weights."""

    def __init__(self, samplers: Sequence[CropSampler], weights: Sequence[float], seed: int = 0):
        self.samplers = list(samplers)
        w = np.asarray(weights, dtype=np.float64)
        self.w = w / w.sum()
        self.rng = np.random.default_rng(seed)

    def batch(self, n: int) -> torch.Tensor:
        which = self.rng.choice(len(self.samplers), size=n, p=self.w)
        return torch.from_numpy(np.stack([self.samplers[i].crop() for i in which]))

    def state(self):
        return {"rng": self.rng.bit_generator.state, "sub": [s.state() for s in self.samplers]}

    def set_state(self, s):
        self.rng.bit_generator.state = s["rng"]
        for sub, st in zip(self.samplers, s["sub"]):
            sub.set_state(st)
