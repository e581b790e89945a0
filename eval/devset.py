#!/usr/bin/env python3
"""A tuning ("dev") set that shares nothing with the evaluation set but the simulator.

Defaults of tded (post-processing, pooling weights, strides, time constants) are chosen on this
set, never on the evaluation set (eval/generate.py), so the evaluation stays a test:
- rooms: random shoeboxes (3-10 m x 3-9 m x 2.4-3.5 m), none of the evaluation's three rooms;
- microphone pairs: random position and orientation, spacing 0.05-0.30 m (the evaluation uses
  0.20-0.30 m);
- sources: espeak-ng synthetic voices (the evaluation uses recorded speech and music), or with
  `--sources DIR` recorded material that is not the evaluation's (DIR/speech/*.wav,
  DIR/music/*.wav; e.g. `eval/devsources.py` writes the training data's validation pools there);
- conditions: RT60 and SNR drawn from continuous ranges, not the evaluation's grid.

    python3 eval/devset.py --out eval/out/dev --n-single 300 --n-mixture 60 --seconds 1.0

Writes OUT/*.wav and OUT/truth.csv in the evaluation's format (same sign conventions).
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import generate as gen  # noqa: E402
import sources as src_mod  # noqa: E402

SPACINGS = (0.05, 0.08, 0.12, 0.15, 0.2, 0.3)


def random_rooms(n: int, seed: int) -> dict:
    """`n` shoebox rooms with a mic pair each (same layout as generate.ROOMS)."""
    rng = np.random.default_rng([seed, 4242])
    rooms = {}
    for i in range(n):
        dims = (float(rng.uniform(3, 10)), float(rng.uniform(3, 9)), float(rng.uniform(2.4, 3.5)))
        d = float(SPACINGS[i % len(SPACINGS)])
        # The pair's midpoint at least 1.2 m from every wall so that sources fit in front.
        c = np.array([rng.uniform(1.2, dims[0] - 1.2), rng.uniform(1.2, dims[1] - 1.2),
                      rng.uniform(1.0, min(1.8, dims[2] - 0.5))])
        th = float(rng.uniform(0, 2 * math.pi))
        u = np.array([math.cos(th), math.sin(th), 0.0])
        rooms[f"dev{i}"] = {"dims": dims, "mic_l": tuple(c - 0.5 * d * u), "mic_r": tuple(c + 0.5 * d * u)}
    return rooms


def fits(room: dict, az: float, dist: float) -> bool:
    dims = room["dims"]
    saved = gen.ROOMS.get("_probe")
    gen.ROOMS["_probe"] = room
    try:
        p = gen.source_position("_probe", az, dist)
    finally:
        if saved is None:
            gen.ROOMS.pop("_probe")
    return all(0.3 < p[k] < dims[k] - 0.3 for k in range(2))


def plan(n_single: int, n_mixture: int, seed: int, samples: int, rooms: dict,
         snr_range: tuple[float, float] = (-5.0, 30.0),
         levels: tuple[float, ...] = (0.3, 0.5, 0.7), music_fraction: float = 0.0,
         mixture_rt60: tuple[float, float] | None = None,
         mixture_snr: tuple[float, float] = (15.0, 30.0)) -> list[dict]:
    rng = np.random.default_rng([seed, 77])
    names = list(rooms)
    specs = []
    for i in range(n_single + n_mixture):
        kind = "single" if i < n_single else "mixture"
        room = names[i % len(names)]
        while True:
            az = int(rng.integers(-90, 91))
            dist = float(rng.uniform(0.5, 2.5))
            if fits(rooms[room], az, dist):
                break
        rt60_range = mixture_rt60 if kind == "mixture" and mixture_rt60 else (0.15, 0.8)
        spec = {"kind": kind, "room": room, "rt60": float(rng.uniform(*rt60_range)),
                "snr": float(rng.uniform(*snr_range)) if kind == "single" else float(rng.uniform(*mixture_snr)),
                "azimuth": az, "distance": dist, "seed": seed, "index": i, "samples": samples,
                "music_fraction": music_fraction,
                "name": f"{'mix' if kind == 'mixture' else 'one'}_{i:05d}.wav"}
        if kind == "mixture":
            spec["level"] = float(levels[i % len(levels)])
        specs.append(spec)
    return specs


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--n-single", type=int, default=300)
    ap.add_argument("--n-mixture", type=int, default=60)
    ap.add_argument("--seconds", type=float, default=gen.SINGLE_SAMPLES / gen.RATE,
                    help="length of single-source clips (mixtures: 0.5 s as in the evaluation)")
    ap.add_argument("--rooms", type=int, default=12)
    ap.add_argument("--seed", type=int, default=1001)
    ap.add_argument("--snr", default="-5,30", help="single-source SNR range LO,HI in dB (uniform)")
    ap.add_argument("--mixture-rt60", default="0.15,0.8",
                    help="mixtures' RT60 range LO,HI in s (uniform; the evaluation's mixtures use 0.1)")
    ap.add_argument("--mixture-snr", default="15,30",
                    help="mixtures' SNR range LO,HI in dB (uniform; the evaluation's mixtures use 30)")
    ap.add_argument("--levels", default="0.3,0.5,0.7",
                    help="distractor levels of the mixtures, in turn (RMS of the distractor / the "
                         "dominant source's, at the microphones, as in the evaluation)")
    ap.add_argument("--music-fraction", type=float, default=0.0,
                    help="share of clips whose source is drawn from the music pool (with --sources; "
                         "default 0: speech only)")
    ap.add_argument("--activity", action="store_true",
                    help="write the `active` column (per 50-ms update: is the dry source active?) as "
                         "generate.py --activity does, for `tune.py --live --active-only`")
    ap.add_argument("--sources", help="recorded sources root (DIR/speech, DIR/music) instead of espeak-ng voices; "
                    "never the evaluation's sources")
    a = ap.parse_args(argv)
    try:
        levels = tuple(float(x) for x in a.levels.split(","))
    except ValueError:
        levels = ()
    if not levels or not all(0 < v <= 10 for v in levels):
        print(f"devset: --levels wants distractor levels like 0.5,0.7,0.9 (each in 0...10), got '{a.levels}'", file=sys.stderr)
        return 2
    try:
        mix_rt60 = tuple(float(x) for x in a.mixture_rt60.split(","))
        mix_snr = tuple(float(x) for x in a.mixture_snr.split(","))
    except ValueError:
        mix_rt60 = mix_snr = ()
    if len(mix_rt60) != 2 or not 0 < mix_rt60[0] <= mix_rt60[1] <= 3:
        print(f"devset: --mixture-rt60 wants LO,HI in seconds (0 < LO <= HI <= 3), got '{a.mixture_rt60}'", file=sys.stderr)
        return 2
    if len(mix_snr) != 2 or not mix_snr[0] <= mix_snr[1]:
        print(f"devset: --mixture-snr wants LO,HI in dB (LO <= HI), got '{a.mixture_snr}'", file=sys.stderr)
        return 2
    if not 0.0 <= a.music_fraction <= 1.0:
        print(f"devset: --music-fraction wants a share in 0...1, got {a.music_fraction}", file=sys.stderr)
        return 2
    rooms = random_rooms(a.rooms, a.seed)
    gen.ROOMS.clear()
    gen.ROOMS.update(rooms)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    try:  # (load_pool raises, never returns an empty pool)
        if a.sources:
            pool = src_mod.load_pool(a.sources, ("speech", "music"), synth_fallback=False)
        else:
            pool = src_mod.load_pool(None, ("synthetic",))
    except RuntimeError as e:
        print(f"devset: {e}", file=sys.stderr)
        return 2
    specs = plan(a.n_single, a.n_mixture, a.seed, int(round(a.seconds * gen.RATE)), rooms,
                 tuple(float(x) for x in a.snr.split(",")), levels, a.music_fraction,
                 mix_rt60, mix_snr)
    rows = []
    for s in specs:
        s["activity"] = a.activity
        for attempt in range(20):
            try:
                rows.append(gen.make_clip(s, pool, out))
                break
            except ValueError:  # the distractor fell outside this room: draw it again
                s["index"] += 100_000
        else:
            raise RuntimeError(f"devset: no room for clip {s['name']}")
    gen.write_truth(rows, out / "truth.csv")
    print(f"wrote {len(rows)} clips to {out} ({len(rooms)} rooms, spacings {sorted({round(gen.mic_distance(r), 3) for r in rooms})})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
