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
MIN_ROLLOFF_HZ = 3000.0  # imported material must be at least this wide (99 % roll-off)
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
              min_seconds: float = 0.8, synth_fallback: bool = True) -> list[Source]:
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
    if not (d.is_dir() and any(d.glob("*.wav"))):
        synthesize_espeak(d)
    got = _load_dir(root, "espeak", "synthetic-speech", min_seconds)
    return got


def import_files(paths, dest: Path, prefix: str, max_files: int | None = None,
                 chunk_seconds: float | None = None, chunks_per_file: int = 1,
                 min_seconds: float = 1.2, raw_rate: int = RATE,
                 min_rolloff_hz: float = MIN_ROLLOFF_HZ) -> int:
    """Convert audio files to mono 16 kHz PCM_16 WAVs under dest (deterministic subset).

    ``max_files`` keeps an evenly spaced subset of the sorted paths. With ``chunk_seconds``
    each file gives ``chunks_per_file`` chunks evenly spread over it (long music tracks),
    otherwise the whole file. ``.raw`` files are read as 16-bit mono at ``raw_rate``.
    Pieces whose 99 % spectral roll-off is below ``min_rolloff_hz`` are dropped: heavily
    low-passed material (some game dialogue is ~1 kHz wide) is nothing like the paper's TIMIT
    and skews every delay estimator. Returns the number of WAVs written.
    """
    dest.mkdir(parents=True, exist_ok=True)
    paths = sorted(Path(p) for p in paths)
    if max_files is not None and len(paths) > max_files:
        idx = np.linspace(0, len(paths) - 1, max_files).round().astype(int)
        paths = [paths[i] for i in sorted(set(idx))]
    written = narrow = 0
    for p in paths:
        try:
            if p.suffix == ".raw":
                data, sr = sf.read(str(p), samplerate=raw_rate, channels=1, subtype="PCM_16",
                                   format="RAW", dtype="float64", always_2d=True)
                x = data.mean(axis=1)
                if sr != RATE:
                    g = np.gcd(int(sr), RATE)
                    x = resample_poly(x, RATE // g, int(sr) // g)
                peak = np.max(np.abs(x))
                x = x / peak if peak > 0 else x
            else:
                x = read_mono_16k(p)
        except Exception as e:  # a broken file in a package: skip it, say so
            print(f"skip {p}: {e}")
            continue
        stem = prefix + "_" + "_".join(p.with_suffix("").parts[-2:]).replace(" ", "_")
        pieces = []
        if chunk_seconds:
            n = int(chunk_seconds * RATE)
            if len(x) >= n:
                starts = np.linspace(0, len(x) - n, chunks_per_file + 2)[1:-1].astype(int)
                pieces = [(f"{stem}_c{k}", x[s0:s0 + n]) for k, s0 in enumerate(starts)]
        else:
            pieces = [(stem, x)]
        for name, piece in pieces:
            if len(piece) < min_seconds * RATE or np.max(np.abs(piece)) < 1e-3:
                continue
            if rolloff_hz(piece) < min_rolloff_hz:
                narrow += 1
                continue
            piece = 0.9 * piece / np.max(np.abs(piece))
            sf.write(str(dest / f"{name}.wav"), piece.astype(np.float32), RATE,
                     subtype="PCM_16")
            written += 1
    if narrow:
        print(f"{prefix}: dropped {narrow} pieces with 99 % roll-off below {min_rolloff_hz:.0f} Hz")
    return written


def rolloff_hz(x: np.ndarray, fraction: float = 0.99) -> float:
    """Frequency below which `fraction` of the power lies (Welch, 1024-point)."""
    from scipy.signal import welch
    f, p = welch(x, RATE, nperseg=min(1024, len(x)))
    c = np.cumsum(p)
    return float(f[min(len(f) - 1, int(np.searchsorted(c, fraction * c[-1])))])


def pool_digest(pool: list[Source]) -> str:
    h = hashlib.sha1()
    for s in pool:
        h.update(s.name.encode())
        h.update(str(len(s.audio)).encode())
    return h.hexdigest()[:12]


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser(description="List (and if needed synthesise) source audio; "
                                 "with --import, convert package audio into the pool.")
    ap.add_argument("--root", default=None)
    ap.add_argument("--kinds", default="speech,music")
    ap.add_argument("--import", dest="imp", nargs="+", default=None, metavar="FILE",
                    help="files to convert into <root>/<--into>")
    ap.add_argument("--into", choices=["speech", "music"], default="speech")
    ap.add_argument("--prefix", default="src")
    ap.add_argument("--max-files", type=int, default=None)
    ap.add_argument("--chunk-seconds", type=float, default=None)
    ap.add_argument("--chunks-per-file", type=int, default=1)
    ap.add_argument("--min-seconds", type=float, default=1.2)
    a = ap.parse_args()
    if a.imp:
        root = Path(a.root) if a.root else Path(os.environ.get("TDE_SOURCES", DEFAULT_ROOT))
        n = import_files(a.imp, root / a.into, a.prefix, a.max_files, a.chunk_seconds,
                         a.chunks_per_file, a.min_seconds)
        print(f"{a.prefix}: {n} files -> {root / a.into}")
        raise SystemExit(0 if n else 1)
    pool = load_pool(a.root, tuple(a.kinds.split(",")))
    by = {}
    for s in pool:
        by.setdefault(s.kind, []).append(len(s.audio) / RATE)
    for k, v in by.items():
        print(f"{k}: {len(v)} files, {sum(v) / 60:.1f} min")
