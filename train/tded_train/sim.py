"""Simulated stereo for training (the paper's "FMA-Sim" idea): dry mono sources placed in random
pyroomacoustics shoebox rooms in front of a random two-microphone pair, so the training data
contains real, varied inter-channel delays (music's direct-path delay is ~0).

    python3 -m tded_train.sim --out ../data/sim/bank.npz --n 3000 \
        --music ../data/music/wesnoth-1.16-music ../data/music/singularity-music

Sources: espeak-ng speech synthesised here (own sentence list, many voices; written to
data/train_sources/espeak, never committed) and mono fold-downs of the given stereo music
folders.  Rooms: dims U([3,3,2.4], [10,9,4]) m, RT60 U(0.1, 0.8) s via inverse Sabine (max order
capped at 20), mic spacing U(0.08, 0.35) m, random horizontal orientation, source azimuth
U(-90, 90) deg, distance U(0.5, 3.5) m.  Deliberately NOT the evaluation rooms/speech.
Output: int16 audio [n, 2, length] and the geometric delay in samples (positive = right later).
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from .data import RATE, load_stereo_folder, resample

REPO = Path(__file__).resolve().parents[2]
C = 343.0
VOICES = ["en", "en-us", "en-gb-scotland", "en-gb-x-rp", "en-029", "de", "fr", "es", "it", "nl",
          "pl", "cs", "pt", "sv", "fi", "ru", "el", "tr", "hu", "ro", "da", "nb", "hr", "sk"]
VARIANTS = ["", "+m1", "+m3", "+m5", "+f1", "+f2", "+f4", "+croak", "+klatt", "+whisper"]
WORDS = ("time voice river window morning station number garden paper little yellow wonder "
         "quickly seven market under silver kitchen forest listen distant thunder orange "
         "table pocket summer ticket animal button circle pencil rocket family engine "
         "mountain blanket shadow signal bottle finger hollow letter motion open travel "
         "sudden wooden violin whistle basket carpet dragon harbour island jacket ladder").split()


def synth_espeak(out_dir: Path, count: int, seed: int) -> list:
    exe = shutil.which("espeak-ng")
    if exe is None:
        print("note: espeak-ng not found; no synthetic speech", file=sys.stderr)
        return []
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        p = out_dir / f"u{i:04d}.wav"
        if not p.exists():
            text = " ".join(rng.choice(WORDS, size=rng.integers(8, 16)))
            voice = rng.choice(VOICES) + rng.choice(VARIANTS)
            cmd = [exe, "-v", voice, "-s", str(int(rng.integers(120, 200))),
                   "-p", str(int(rng.integers(20, 80))), "-w", str(p), text]
            if subprocess.run(cmd, capture_output=True).returncode != 0:
                subprocess.run([exe, "-w", str(p), text], capture_output=True)
        if p.exists():
            paths.append(p)
    return paths


def load_mono(paths) -> list:
    out = []
    for p in paths:
        x, sr = sf.read(str(p), dtype="float32", always_2d=True)
        x = resample(x.mean(axis=1, keepdims=True), sr, RATE)[:, 0]
        if len(x) > RATE // 2:
            out.append(x / max(np.abs(x).max(), 1e-6) * 0.5)
    return out


def simulate_clip(src: np.ndarray, length: int, rng: np.random.Generator):
    import pyroomacoustics as pra

    for _ in range(100):
        dims = rng.uniform([3, 3, 2.4], [10, 9, 4])
        rt60 = rng.uniform(0.1, 0.8)
        spacing = rng.uniform(0.08, 0.35)
        theta = rng.uniform(0, 2 * np.pi)  # orientation of the mic axis (left -> right)
        center = np.r_[rng.uniform(0.5, dims[0] - 0.5), rng.uniform(0.5, dims[1] - 0.5),
                       rng.uniform(1.0, min(2.0, dims[2] - 0.3))]
        axis = np.r_[np.cos(theta), np.sin(theta), 0.0]
        mL, mR = center - axis * spacing / 2, center + axis * spacing / 2
        az = np.deg2rad(rng.uniform(-90, 90))  # 0 = broadside, positive toward the left mic
        front = np.r_[-np.sin(theta), np.cos(theta), 0.0]
        dist = rng.uniform(0.5, 3.5)
        direction = np.cos(az) * front - np.sin(az) * axis
        s = center + dist * direction
        s[2] = center[2] + rng.uniform(-0.3, 0.3)
        if np.all(s > 0.2) and np.all(s < dims - 0.2):
            break
    else:
        raise RuntimeError("could not place a source")
    try:
        e, mo = pra.inverse_sabine(rt60, dims)
    except ValueError:  # room too large for so short an RT60: fall back to a dead room
        e, mo = 0.99, 3
    room = pra.ShoeBox(dims, fs=RATE, materials=pra.Material(e), max_order=int(min(mo, 20)))
    need = length + 4000
    o = rng.integers(0, max(1, len(src) - need))
    room.add_source(s, signal=src[o: o + need])
    room.add_microphone_array(np.c_[mL, mR])
    room.simulate()
    sig = room.mic_array.signals
    start = 2000  # skip the onset transient
    x = sig[:, start: start + length]
    if x.shape[1] < length:
        x = np.pad(x, ((0, 0), (0, length - x.shape[1])))
    x = x / max(np.abs(x).max(), 1e-9) * rng.uniform(0.2, 0.9)
    delay = (np.linalg.norm(s - mR) - np.linalg.norm(s - mL)) / C * RATE
    return x.astype(np.float32), float(delay)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--out", default=str(REPO / "data" / "sim" / "bank.npz"))
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--length", type=int, default=8000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-speech", type=int, default=200, help="espeak utterances to synthesise")
    ap.add_argument("--music", nargs="*", default=[], help="stereo music folders (folded to mono)")
    ap.add_argument("--music-fraction", type=float, default=0.5)
    a = ap.parse_args(argv)
    rng = np.random.default_rng(a.seed)
    speech = load_mono(synth_espeak(REPO / "data" / "train_sources" / "espeak", a.n_speech, a.seed))
    music = []
    for d in a.music:
        for t in load_stereo_folder(d):
            x = np.asarray(t, dtype=np.float32).mean(axis=0) / 32768.0
            for k in range(0, len(x) - 3 * RATE, 20 * RATE):  # 3 s pieces every 20 s
                seg = x[k: k + 3 * RATE]
                if np.sqrt((seg ** 2).mean()) > 0.01:
                    music.append(seg)
    print(f"sources: {len(speech)} speech, {len(music)} music pieces", file=sys.stderr)
    assert speech or music, "no sources"
    audio = np.zeros((a.n, 2, a.length), dtype=np.int16)
    delays = np.zeros(a.n, dtype=np.float32)
    for i in range(a.n):
        use_music = music and (not speech or rng.random() < a.music_fraction)
        pool = music if use_music else speech
        src = pool[rng.integers(len(pool))]
        x, d = simulate_clip(src, a.length, rng)
        audio[i] = np.clip(x * 32767, -32768, 32767).astype(np.int16)
        delays[i] = d
        if (i + 1) % 500 == 0:
            print(f"  {i + 1}/{a.n}", file=sys.stderr)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    np.savez(a.out, audio=audio, delay=delays)
    print(f"wrote {a.out}: {a.n} clips x {a.length} samples; |delay| mean "
          f"{np.abs(delays).mean():.2f} max {np.abs(delays).max():.2f} samples", file=sys.stderr)


if __name__ == "__main__":
    main()
