"""Dry (mono, 16 kHz) source material for the TDE-Simulation generator.

Layout under the sources root (default ``data/sources``, gitignored, never committed):

    <root>/speech/*.wav   real recorded speech, mono 16 kHz (made by eval/fetch_sources.sh)
    <root>/music/*.wav    music folded down to mono, 16 kHz (made by eval/fetch_sources.sh)
    <root>/espeak/*.wav   synthetic speech, espeak-ng, many voices (made here on demand)

``load_pool`` returns whatever is there. When no recorded speech is present it falls back to
espeak-ng synthetic speech (synthesised on first use, a few seconds), so the generator always
has something to say. Nothing here downloads anything: fetching is eval/fetch_sources.sh.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

RATE = 16000
REPO = Path(__file__).resolve().parent.parent
DEFAULT_ROOT = REPO / "data" / "sources"

# Sentences for the synthetic fallback (public-domain style text, varied phonetics).
SENTENCES = [
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "Please call Stella and ask her to bring these things with her from the store.",
    "She sells sea shells by the sea shore, and the shells she sells are surely real.",
    "A large size in stockings is hard to sell, but the small ones go quickly.",
    "The birch canoe slid on the smooth planks while the wind kept blowing.",
    "Glue the sheet to the dark blue background and hang it on the wall.",
    "It is easy to tell the depth of a well by dropping a stone into it.",
    "These days a chicken leg is a rare dish, said the old man at the market.",
    "Rice is often served in round bowls, with a cup of hot tea on the side.",
    "The juice of lemons makes fine punch, especially on a warm summer evening.",
    "Four hours of steady work faced us before we could finally go home.",
    "A king ruled the state in the early days, and his castle stood on a hill.",
]
# Voices that exist in stock espeak-ng, with variants for more speaker variety.
VOICES = ["en", "en-us", "en-gb-scotland", "en-gb-x-rp", "en-029", "de", "fr", "es", "it",
          "nl", "pl", "pt", "sv", "cs", "fi", "hu"]
VARIANTS = ["", "+m1", "+m3", "+f1", "+f2", "+f4", "+croak", "+klatt"]


@dataclasses.dataclass
class Source:
    name: str          # path relative to the sources root (recorded in the truth CSV)
    kind: str          # "speech" | "music" | "synthetic-speech"
    audio: np.ndarray  # mono float64 at RATE, peak-normalised


def read_mono_16k(path: Path) -> np.ndarray:
    data, sr = sf.read(str(path), dtype="float64", always_2d=True)
    x = data.mean(axis=1)
    if sr != RATE:
        g = np.gcd(int(sr), RATE)
        x = resample_poly(x, RATE // g, int(sr) // g)
    peak = np.max(np.abs(x)) if x.size else 0.0
    return x / peak if peak > 0 else x


def synthesize_espeak(out_dir: Path, count: int = 48, seed: int = 0) -> list[Path]:
    """Synthesise ``count`` sentences with varied espeak-ng voices/speeds into out_dir."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError("espeak-ng not found: install it (apt-get install espeak-ng) or run "
                           "eval/fetch_sources.sh to get recorded speech")
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    made = []
    for i in range(count):
        voice = VOICES[i % len(VOICES)] + VARIANTS[(i // len(VOICES)) % len(VARIANTS)]
        text = SENTENCES[i % len(SENTENCES)]
        speed = int(rng.integers(130, 190))
        pitch = int(rng.integers(25, 75))
        safe = voice.replace("+", "_")
        target = out_dir / f"espeak_{i:03d}_{safe}.wav"
        if target.exists():
            made.append(target)
            continue
        with tempfile.NamedTemporaryFile(suffix=".wav", delete=False) as tmp:
            tmp_path = Path(tmp.name)
        try:
            r = subprocess.run([exe, "-v", voice, "-s", str(speed), "-p", str(pitch), "-w",
                                str(tmp_path), text], capture_output=True, text=True)
            if r.returncode != 0 or not tmp_path.exists() or tmp_path.stat().st_size < 1000:
                # unknown voice on this espeak build: fall back to the default voice
                subprocess.run([exe, "-s", str(speed), "-p", str(pitch), "-w", str(tmp_path),
                                text], check=True, capture_output=True)
            x = read_mono_16k(tmp_path)
            sf.write(str(target), (0.9 * x).astype(np.float32), RATE, subtype="PCM_16")
            made.append(target)
        finally:
            tmp_path.unlink(missing_ok=True)
    return made


def _load_dir(root: Path, sub: str, kind: str, min_seconds: float) -> list[Source]:
    d = root / sub
    if not d.is_dir():
        return []
    out = []
    for p in sorted(d.glob("*.wav")):
        try:
            x = read_mono_16k(p)
        except Exception:  # unreadable source file: skip it, the pool is best effort
            continue
        if len(x) >= min_seconds * RATE and np.max(np.abs(x)) > 0:
            out.append(Source(f"{sub}/{p.name}", kind, x))
    return out


def load_pool(root: Path | str | None = None, kinds=("speech", "music"),
              min_seconds: float = 1.2, synth_fallback: bool = True) -> list[Source]:
    """All usable sources of the requested kinds.

    ``speech`` means recorded speech when <root>/speech has any, else espeak-ng synthetic
    speech (synthesised into <root>/espeak on first use when ``synth_fallback``).
    ``music`` is returned only when <root>/music has files (no fallback).
    ``synthetic`` forces the espeak-ng pool.
    """
    root = Path(root) if root is not None else Path(os.environ.get("TDE_SOURCES", DEFAULT_ROOT))
    pool: list[Source] = []
    for kind in kinds:
        if kind == "speech":
            got = _load_dir(root, "speech", "speech", min_seconds)
            if not got and synth_fallback:
                got = _synthetic(root, min_seconds)
            pool += got
        elif kind == "music":
            pool += _load_dir(root, "music", "music", min_seconds)
        elif kind == "synthetic":
            pool += _synthetic(root, min_seconds)
        else:
            raise ValueError(f"unknown source kind {kind!r}")
    if not pool:
        raise RuntimeError(f"no source audio under {root} for kinds {kinds}; run "
                           "eval/fetch_sources.sh or install espeak-ng")
    return pool


def _synthetic(root: Path, min_seconds: float) -> list[Source]:
    d = root / "espeak"
    if not any(d.glob("*.wav")) if d.is_dir() else True:
        synthesize_espeak(d)
    got = _load_dir(root, "espeak", "synthetic-speech", min_seconds)
    return got


def pool_digest(pool: list[Source]) -> str:
    h = hashlib.sha1()
    for s in pool:
        h.update(s.name.encode())
        h.update(str(len(s.audio)).encode())
    return h.hexdigest()[:12]


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser(description="List (and if needed synthesise) source audio.")
    ap.add_argument("--root", default=None)
    ap.add_argument("--kinds", default="speech,music")
    a = ap.parse_args()
    pool = load_pool(a.root, tuple(a.kinds.split(",")))
    by = {}
    for s in pool:
        by.setdefault(s.kind, []).append(len(s.audio) / RATE)
    for k, v in by.items():
        print(f"{k}: {len(v)} files, {sum(v) / 60:.1f} min")
