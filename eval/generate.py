#!/usr/bin/env python3
"""Rebuild the StereoCRW paper's TDE-Simulation test set, with a seed.

Recipe (see ../shared/reference/stereocrw-facts.md and eval/README.md):
- pyroomacoustics ShoeBox, image-source method; absorption and max order from inverse Sabine
  (c = 343 m/s; energy absorption clamped to 0.85 when Sabine asks for >= 1, as the paper's
  code does); RT60 target = nominal / 1.4, nominal in {0.1, 0.3, 0.5, 0.7, 0.9} s.
- Three rooms and mic pairs (left mic -> right mic), exactly the paper's (ROOMS below).
- Source at integer azimuth uniform in [-90, 90] deg, distance U(0.5, 3.0) m from the pair's
  midpoint, at mic height, on the broadside half-plane that points into the room.
- White Gaussian noise, independent per channel, scaled to the exact SNR (dB) with signal and
  noise power both measured over both channels of the clip.
- Mixture variant: a second (distracting) source at a different azimuth and its own distance,
  scaled so that its image at the mics has RMS = level x the dominant image's RMS (both channels);
  levels 0.1 ... 0.9; 0.5 s of audio; the dominant source's delay is the answer.

Sign conventions (same as the engine):
- delay = (|s - mic_R| - |s - mic_L|) / c; positive = right channel later (source nearer left).
- azimuth_deg: positive = toward the LEFT mic, negative = toward the right mic, 0 = broadside.
  So sign(delay) == sign(azimuth) and delay ~ d sin(azimuth) / c in the far field.
  (The paper's code uses the opposite angle sign; the distribution is symmetric.)

Library use: ``generate(out_dir, size="small", seed=7)`` returns the truth rows; CLI:
``python3 eval/generate.py --size small --seed 7 --out DIR`` writes DIR/*.wav + DIR/truth.csv.
"""
from __future__ import annotations

import argparse
import csv
import itertools
import math
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import fftconvolve

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sources as src_mod  # noqa: E402

RATE = 16000
C = 343.0
NOMINAL_RT60 = (0.1, 0.3, 0.5, 0.7, 0.9)
SNRS_DB = (30, 20, 10, 0, -10)
LEVELS = (0.1, 0.3, 0.5, 0.7, 0.9)
# Paper clip length for one estimate: a 1024-sample window and 128 step-1 votes.
SINGLE_SAMPLES = 1024 + 127
MIXTURE_SAMPLES = RATE // 2          # 0.5 s
PRE_ROLL = RATE                      # source audio before the clip (reverb builds up), 1 s

ROOMS = {
    "room1": {"dims": (7.0, 6.0, 3.0), "mic_l": (3.4, 1.0, 1.6), "mic_r": (3.7, 1.0, 1.6)},
    "room2": {"dims": (4.0, 7.0, 2.8), "mic_l": (0.2, 3.2, 1.7), "mic_r": (0.2, 3.0, 1.7)},
    "room3": {"dims": (7.0, 7.0, 2.7), "mic_l": (3.4, 3.1, 1.5), "mic_r": (3.5, 2.9, 1.5)},
}

TRUTH_FIELDS = [
    "file", "delay_samples", "delay_ms", "azimuth_deg", "distance", "room", "mic_distance",
    "rt60", "rt60_target", "snr_db", "source", "source_kind", "kind", "distractor_level",
    "distractor_azimuth_deg", "distractor_distance", "distractor_delay_samples",
    "distractor_source", "samples", "clip_seed", "active",
]

# Live clips (--activity): one character per 50 ms update time t = k * 0.05 s (k = 1, 2, ...):
# "1" when the dry source's RMS over the 0.1 s before t is within ACTIVE_DB of the clip's
# loudest such 0.1 s, else "0" (the source is silent or paused there).
ACTIVE_HOP = RATE // 20
ACTIVE_SPAN = RATE // 10
ACTIVE_DB = -20.0

# Size presets. "single" clips: per (room, nominal RT60, SNR) cell; "mixture": per (room, level).
SIZES = {
    # tens of clips, seconds to make: every room, every level, a spread of conditions
    "small": {"single_cells": "spread", "single_n": 30, "mixture_n_per_level": 2},
    # paper-like grid: 3 rooms x 5 RT60 x 5 SNR x n + mixtures 3 rooms x 5 levels x m
    "full": {"single_cells": "grid", "single_n_per_cell": 48, "mixture_n_per_level": 240},
}


def mic_distance(room: str) -> float:
    r = ROOMS[room]
    return float(np.linalg.norm(np.subtract(r["mic_r"], r["mic_l"])))


def inverse_sabine(rt60: float, dims, c: float = C) -> tuple[float, int]:
    """Energy absorption and ISM max order for a target RT60 (Sabine), as the paper's code.

    Like pyroomacoustics.inverse_sabine, but instead of raising when Sabine needs an absorption
    >= 1 (short RT60 in these rooms), it clamps to 0.85 as the paper's reference code did.
    """
    dims = [float(v) for v in dims]
    pairs = list(itertools.combinations(dims, 2))
    radius = min(a * b / math.sqrt(a * a + b * b) for a, b in pairs)
    volume = float(np.prod(dims))
    surface = 2.0 * sum(a * b for a, b in pairs)
    e_abs = 24.0 * math.log(10.0) * volume / (c * surface * rt60)
    if e_abs >= 1.0:
        e_abs = 0.85
    max_order = int(math.ceil(c * rt60 / radius - 1.0))
    return e_abs, max_order


def source_position(room: str, azimuth_deg: float, distance: float) -> np.ndarray:
    """Point at `distance` from the mic midpoint, at mic height, at the given azimuth.

    Broadside normal n = the left->right axis u rotated +90 deg about z (points into the room
    for all three rooms); direction = cos(az) n - sin(az) u, so positive azimuth leans toward
    the left mic.
    """
    r = ROOMS[room]
    left, right = np.asarray(r["mic_l"], float), np.asarray(r["mic_r"], float)
    centre = 0.5 * (left + right)
    u = right - left
    u[2] = 0.0
    u /= np.linalg.norm(u)
    n = np.array([-u[1], u[0], 0.0])
    a = math.radians(azimuth_deg)
    return centre + distance * (math.cos(a) * n - math.sin(a) * u)


def true_delay_s(room: str, pos: np.ndarray, c: float = C) -> float:
    r = ROOMS[room]
    return float((np.linalg.norm(pos - np.asarray(r["mic_r"])) -
                  np.linalg.norm(pos - np.asarray(r["mic_l"]))) / c)


def room_rirs(room: str, rt60_nominal: float | None, positions) -> list[list[np.ndarray]]:
    """RIRs [mic][source] for sources at `positions`. rt60_nominal None = anechoic (order 0)."""
    import pyroomacoustics as pra
    r = ROOMS[room]
    if rt60_nominal is None:
        e_abs, order = 1.0, 0
        room_obj = pra.ShoeBox(list(r["dims"]), fs=RATE, max_order=0,
                               materials=pra.Material(0.99))
    else:
        e_abs, order = inverse_sabine(rt60_nominal / 1.4, r["dims"])
        room_obj = pra.ShoeBox(list(r["dims"]), fs=RATE, max_order=order,
                               materials=pra.Material(e_abs))
    for p in positions:
        room_obj.add_source(list(map(float, p)))
    room_obj.add_microphone_array(np.c_[r["mic_l"], r["mic_r"]])
    room_obj.compute_rir()
    return room_obj.rir


def render(rirs_for_source, dry: np.ndarray) -> np.ndarray:
    """Stereo (2, N) image of one dry source through its two RIRs (full convolution)."""
    outs = [fftconvolve(dry, h) for h in rirs_for_source]
    n = max(len(o) for o in outs)
    y = np.zeros((2, n))
    for i, o in enumerate(outs):
        y[i, :len(o)] = o
    return y


def add_noise(x: np.ndarray, snr_db: float | None, rng) -> np.ndarray:
    """White Gaussian noise, independent per channel, at exactly snr_db (power over both chans)."""
    if snr_db is None:
        return x
    noise = rng.standard_normal(x.shape)
    p_sig = float(np.mean(x ** 2))
    p_noise = float(np.mean(noise ** 2))
    noise *= math.sqrt(p_sig / (p_noise * 10.0 ** (snr_db / 10.0)))
    return x + noise


def pick_segment(audio: np.ndarray, clip: int, pre: int, rng) -> tuple[np.ndarray, int]:
    """A dry segment of pre + clip samples whose last `clip` samples are active sound.

    Returns (segment, pre_used). Candidate starts lie on a 10 ms grid; an active clip has
    energy >= 25 % of the loudest candidate's. Files shorter than pre + clip get a shorter
    pre-roll (never less than 0.25 s when the file allows it), or zero padding in front.
    """
    n = len(audio)
    pre_used = min(pre, max(0, n - clip))
    if n < clip:
        audio = np.concatenate([audio, np.zeros(clip - n)])
        n = clip
    starts = np.arange(pre_used, n - clip + 1, 160)
    if len(starts) == 0:
        starts = np.array([n - clip])
    csum = np.concatenate([[0.0], np.cumsum(audio ** 2)])
    energy = csum[starts + clip] - csum[starts]
    ok = starts[energy >= 0.25 * energy.max()]
    t = int(rng.choice(ok))
    seg = audio[t - pre_used: t + clip]
    return seg, pre_used


def _complete(path: Path, clip: int) -> bool:
    try:
        info = sf.info(str(path))
    except Exception:
        return False
    return info.frames == clip and info.channels == 2 and info.samplerate == RATE


def activity(dry: np.ndarray, clip: int) -> str:
    """The "active" string of a clip whose dry source (aligned with the clip) is `dry`."""
    x = np.zeros(clip)
    x[:min(clip, len(dry))] = dry[:clip]
    csum = np.concatenate([[0.0], np.cumsum(x ** 2)])
    ends = np.arange(ACTIVE_HOP, clip + 1, ACTIVE_HOP)
    starts = np.maximum(0, ends - ACTIVE_SPAN)
    rms = np.sqrt((csum[ends] - csum[starts]) / ACTIVE_SPAN)
    if len(rms) == 0 or rms.max() <= 0:
        return "0" * len(rms)
    on = rms >= rms.max() * 10.0 ** (ACTIVE_DB / 20.0)
    return "".join("1" if v else "0" for v in on)


def _draw_azimuth(rng, exclude=None) -> int:
    while True:
        a = int(rng.integers(-90, 91))
        if exclude is None or a != exclude:
            return a


def make_clip(spec: dict, pool, out_dir: Path, subtype: str = "PCM_16") -> dict:
    """Render one clip described by `spec` and write it; returns its truth row."""
    rng = np.random.default_rng([spec["seed"], spec["index"], 7919])
    room = spec["room"]
    kind = spec["kind"]
    clip = MIXTURE_SAMPLES if kind == "mixture" else spec.get("samples", SINGLE_SAMPLES)
    az = _draw_azimuth(rng)
    dist = float(rng.uniform(0.5, 3.0))
    az = int(spec.get("azimuth", az))          # optional fixed geometry (tests)
    dist = float(spec.get("distance", dist))
    pos = source_position(room, az, dist)
    music = [s for s in pool if s.kind == "music"]
    speech = [s for s in pool if s.kind != "music"] or music
    use_music = bool(music) and rng.uniform() < spec.get("music_fraction", 0.25)
    group = music if use_music else speech
    src = group[int(rng.integers(len(group)))]
    seg, pre = pick_segment(src.audio, clip, PRE_ROLL, rng)
    positions = [pos]
    level = spec.get("level")
    if kind == "mixture":
        az2 = _draw_azimuth(rng, exclude=az)
        dist2 = float(rng.uniform(0.5, 3.0))
        pos2 = source_position(room, az2, dist2)
        others = [s for s in speech if s.name != src.name] or pool
        src2 = others[int(rng.integers(len(others)))]
        seg2, _ = pick_segment(src2.audio, len(seg), 0, rng)
        positions.append(pos2)
    active = activity(seg[pre:pre + clip], clip) if spec.get("activity") else ""
    name = spec["name"]
    # --reuse: a complete clip already on disk is kept (same spec, same seed -> same audio);
    # only its truth row is recomputed (geometry and source draws need no rendering).
    if not (spec.get("reuse") and _complete(out_dir / name, clip)):
        rirs = room_rirs(room, spec["rt60"], positions)
        # The clip starts where the dry segment's active part arrives at the array midpoint.
        lag = 40 + int(round(dist / C * RATE))  # 40 = pyroomacoustics fractional-delay centre
        start = pre + lag
        dom = render([rirs[0][0], rirs[1][0]], seg)
        total = dom[:, start:start + clip]
        if total.shape[1] < clip:
            total = np.pad(total, ((0, 0), (0, clip - total.shape[1])))
        if kind == "mixture":
            dis = render([rirs[0][1], rirs[1][1]], seg2)[:, start:start + clip]
            if dis.shape[1] < clip:
                dis = np.pad(dis, ((0, 0), (0, clip - dis.shape[1])))
            rms_dom = math.sqrt(float(np.mean(total ** 2)))
            rms_dis = math.sqrt(float(np.mean(dis ** 2)))
            if rms_dis > 0:
                dis *= level * rms_dom / rms_dis
            total = total + dis
        noisy = add_noise(total, spec["snr"], rng)
        peak = float(np.max(np.abs(noisy)))
        if peak > 0:
            noisy *= 0.9 / peak
        sf.write(str(out_dir / name), noisy.T.astype(np.float32), RATE, subtype=subtype)
    delay = true_delay_s(room, pos)
    row = {
        "file": name, "delay_samples": delay * RATE, "delay_ms": delay * 1000.0,
        "azimuth_deg": az, "distance": dist, "room": room, "mic_distance": mic_distance(room),
        "rt60": "" if spec["rt60"] is None else spec["rt60"],
        "rt60_target": "" if spec["rt60"] is None else spec["rt60"] / 1.4,
        "snr_db": "" if spec["snr"] is None else spec["snr"],
        "source": src.name, "source_kind": src.kind, "kind": kind,
        "distractor_level": "" if level is None else level,
        "distractor_azimuth_deg": "", "distractor_distance": "", "distractor_delay_samples": "",
        "distractor_source": "", "samples": clip, "clip_seed": f"{spec['seed']}:{spec['index']}",
        "active": active,
    }
    if kind == "mixture":
        row.update({"distractor_azimuth_deg": az2, "distractor_distance": dist2,
                    "distractor_delay_samples": true_delay_s(room, pos2) * RATE,
                    "distractor_source": src2.name})
    return row


def plan(size: str, seed: int, n_single: int | None = None, n_mixture: int | None = None,
         mixture_snr: float = 30.0, mixture_rt60: float = 0.1,
         single_samples: int = SINGLE_SAMPLES, music_fraction: float = 0.25,
         activity: bool = False, subset: tuple[int, int] | None = None) -> list[dict]:
    """The list of clip specs for a size preset (deterministic in `seed`).

    subset (N, M): only the first N clips of each single-source cell (or of the spread) and
    the first M mixtures of each level, with the names, indices and audio they have in the
    whole plan: a subset of exactly the same clips."""
    preset = SIZES[size]
    rng = np.random.default_rng([seed, 1])
    specs = []
    rooms = list(ROOMS)
    if preset["single_cells"] == "grid":
        per = n_single if n_single is not None else preset["single_n_per_cell"]
        for room in rooms:
            for rt in NOMINAL_RT60:
                for snr in SNRS_DB:
                    for j in range(per):
                        specs.append({"kind": "single", "room": room, "rt60": rt, "snr": snr,
                                      "pos": j})
    else:
        total = n_single if n_single is not None else preset["single_n"]
        # a spread: rooms cycle, conditions from a shuffled grid (every RT60 and SNR appear)
        cells = [(rt, snr) for rt in NOMINAL_RT60 for snr in SNRS_DB]
        order = rng.permutation(len(cells))
        for i in range(total):
            rt, snr = cells[order[i % len(cells)]]
            specs.append({"kind": "single", "room": rooms[i % 3], "rt60": rt, "snr": snr,
                          "pos": i})
    per_level = n_mixture if n_mixture is not None else preset["mixture_n_per_level"]
    k = 0
    for level in LEVELS:
        for j in range(per_level):
            specs.append({"kind": "mixture", "room": rooms[k % 3], "rt60": mixture_rt60,
                          "snr": mixture_snr, "level": level, "pos": j})
            k += 1
    for i, s in enumerate(specs):
        s["seed"] = seed
        s["index"] = i
        s["samples"] = single_samples
        s["music_fraction"] = music_fraction if s["kind"] == "single" else 0.0
        s["activity"] = activity
        tag = "mix" if s["kind"] == "mixture" else "one"
        s["name"] = f"{tag}_{i:05d}.wav"
    if subset is not None:
        specs = [s for s in specs if s["pos"] < subset[0 if s["kind"] == "single" else 1]]
    return specs


_POOL = None


def _init_worker(root, kinds):
    global _POOL
    _POOL = src_mod.load_pool(root, kinds)


def _work(args):
    spec, out_dir, subtype = args
    return make_clip(spec, _POOL, Path(out_dir), subtype)


def write_truth(rows: list[dict], path: Path) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=TRUTH_FIELDS)
        w.writeheader()
        for r in rows:
            out = dict(r)
            for key in ("delay_samples", "delay_ms", "distance", "mic_distance", "rt60_target",
                        "distractor_distance", "distractor_delay_samples"):
                if isinstance(out.get(key), float):
                    out[key] = f"{out[key]:.6f}"
            w.writerow(out)


def read_truth(path: Path | str) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def generate(out_dir: Path | str, size: str = "small", seed: int = 7, jobs: int = 1,
             sources_root=None, kinds=("speech", "music"), subtype: str = "PCM_16",
             n_single: int | None = None, n_mixture: int | None = None,
             mixture_snr: float = 30.0, mixture_rt60: float = 0.1,
             single_samples: int = SINGLE_SAMPLES, progress: bool = False,
             music_fraction: float = 0.25, activity: bool = False,
             subset: tuple[int, int] | None = None, reuse: bool = False) -> list[dict]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    specs = plan(size, seed, n_single, n_mixture, mixture_snr, mixture_rt60, single_samples,
                 music_fraction, activity, subset)
    for s in specs:
        s["reuse"] = reuse
    t0 = time.time()
    rows = []
    if jobs <= 1:
        pool = src_mod.load_pool(sources_root, kinds)
        for i, s in enumerate(specs):
            rows.append(make_clip(s, pool, out_dir, subtype))
            if progress and (i + 1) % 100 == 0:
                print(f"  {i + 1}/{len(specs)} clips, {time.time() - t0:.0f} s", file=sys.stderr)
    else:
        src_mod.load_pool(sources_root, kinds)  # synthesise fallback once, before forking
        with ProcessPoolExecutor(jobs, initializer=_init_worker,
                                 initargs=(sources_root, kinds)) as ex:
            for i, row in enumerate(ex.map(_work, [(s, str(out_dir), subtype) for s in specs],
                                           chunksize=4)):
                rows.append(row)
                if progress and (i + 1) % 100 == 0:
                    print(f"  {i + 1}/{len(specs)} clips, {time.time() - t0:.0f} s",
                          file=sys.stderr)
    write_truth(rows, out_dir / "truth.csv")
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description="Generate the TDE-Simulation test set (paper recipe) with ground truth.",
        epilog="Writes OUT/*.wav (16 kHz stereo) and OUT/truth.csv. Delay sign: positive = "
               "right channel later; azimuth sign: positive = toward the left mic.")
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--size", choices=sorted(SIZES), default="small",
                    help="small: 40 clips in seconds; full: 4800 clips (3600 single: 3 rooms x 5 RT60 x 5 SNR x 48; 1200 mixtures)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--jobs", type=int, default=1, help="worker processes")
    ap.add_argument("--sources", default=None,
                    help="sources root (default $TDE_SOURCES or data/sources); see eval/sources.py")
    ap.add_argument("--kinds", default="speech,music",
                    help="comma list of source kinds: speech, music, synthetic")
    ap.add_argument("--n-single", type=int, default=None,
                    help="override: single clips in total (small) or per condition cell (full)")
    ap.add_argument("--n-mixture", type=int, default=None,
                    help="override: mixture clips per distractor level")
    ap.add_argument("--mixture-snr", type=float, default=30.0)
    ap.add_argument("--mixture-rt60", type=float, default=0.1, help="nominal RT60 of mixtures")
    ap.add_argument("--single-samples", type=int, default=SINGLE_SAMPLES,
                    help="samples per single-source clip (paper: 1024 + 127 = 128 step-1 votes)")
    ap.add_argument("--music-fraction", type=float, default=0.25,
                    help="share of single-source clips drawn from music when music is present "
                         "(mixtures are always speech over speech)")
    ap.add_argument("--activity", action="store_true",
                    help="fill truth.csv's `active` column: per 50 ms update, is the dry source "
                         "active (for the live metric's multi-second clips)")
    ap.add_argument("--subset", default=None, metavar="N,M",
                    help="only the first N clips of each single-source cell and the first M "
                         "mixtures of each level (same names and audio as in the whole set)")
    ap.add_argument("--reuse", action="store_true",
                    help="keep complete clips already in OUT (same seed and plan) instead of "
                         "rendering them again; truth.csv is rewritten for the whole plan")
    ap.add_argument("--subtype", default="PCM_16", help="WAV subtype (PCM_16, FLOAT, ...)")
    a = ap.parse_args(argv)
    t0 = time.time()
    rows = generate(a.out, a.size, a.seed, a.jobs, a.sources, tuple(a.kinds.split(",")),
                    a.subtype, a.n_single, a.n_mixture, a.mixture_snr, a.mixture_rt60,
                    a.single_samples, progress=True, music_fraction=a.music_fraction,
                    activity=a.activity,
                    subset=tuple(int(v) for v in a.subset.split(",")) if a.subset else None,
                    reuse=a.reuse)
    kinds = {}
    for r in rows:
        kinds[r["source_kind"]] = kinds.get(r["source_kind"], 0) + 1
    print(f"wrote {len(rows)} clips to {a.out} ({', '.join(f'{k}: {v}' for k, v in kinds.items())})"
          f" in {time.time() - t0:.1f} s; truth: {Path(a.out) / 'truth.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
