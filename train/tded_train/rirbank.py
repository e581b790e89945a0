"""Precomputed room-impulse-response bank for the supervised stage (labels are free in simulation).

    python3 -m tded_train.rirbank --out ../data/rirbank/train.npz --rooms 600 --seed 1
    python3 -m tded_train.rirbank --out ../data/rirbank/val.npz --rooms 60 --seed 90001

Each room is a random pyroomacoustics shoebox with one random two-microphone pair and
``positions`` random source positions.  Per (room, position) the bank stores the two RIRs
(left mic, right mic; float16, ``taps`` long, the direct path included) and the label

    delay = (|s - mic_R| - |s - mic_L|) / c * 16000     (samples, positive = right later)

which is exact by construction: pyroomacoustics places every image (the direct path too) with
the same fractional-delay filter at ``40 + distance / c * fs`` taps for both microphones, so the
difference of the direct-path arrival times is the label (tested against an independent
cross-correlation of the rendered direct path in tests/test_tded_supervised.py).

Randomisation: dims U([3, 3, 2.4], [12, 10, 4.5]) m, RT60 U(0.1, 0.9) s (inverse Sabine; a dead
room when Sabine cannot reach it; image order <= 20), mic spacing U(0.05, 0.30) m, horizontal
axis at a random orientation, pair centre >= 0.5 m from the walls at height U(0.8, 2.0) m;
sources anywhere around the pair (random direction, distance U(0.4, 4.0) m, height U(0.6,
2.2) m, >= 0.25 m from the walls).  Rooms within 0.6 m (every dimension, either floor
orientation) of the evaluation's three rooms (eval/generate.py) are rejected, so neither
training nor validation ever sees an evaluation room; train and validation banks are built with
different seeds (different rooms, pairs and spacings).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

RATE = 16000
FD_CENTRE = 40  # pyroomacoustics fractional-delay filter centre (fdl 81)
EVAL_ROOMS = [(7.0, 6.0, 3.0), (4.0, 7.0, 2.8), (7.0, 7.0, 2.7)]  # eval/generate.py ROOMS


def near_eval_room(dims, tol: float = 0.6) -> bool:
    d = np.asarray(dims, dtype=float)
    for e in EVAL_ROOMS:
        for cand in (np.array(e), np.array([e[1], e[0], e[2]])):
            if np.all(np.abs(d - cand) <= tol):
                return True
    return False


def speed_of_sound() -> float:
    import pyroomacoustics as pra
    return float(pra.constants.get("c"))


def draw_room(rng: np.random.Generator, positions: int):
    """Random geometry: (dims, rt60, mic_L, mic_R, sources [P, 3])."""
    while True:
        dims = rng.uniform([3.0, 3.0, 2.4], [12.0, 10.0, 4.5])
        if not near_eval_room(dims):
            break
    rt60 = rng.uniform(0.1, 0.9)
    spacing = rng.uniform(0.05, 0.30)
    theta = rng.uniform(0, 2 * np.pi)
    centre = np.r_[rng.uniform(0.5, dims[0] - 0.5), rng.uniform(0.5, dims[1] - 0.5),
                   rng.uniform(0.8, min(2.0, dims[2] - 0.3))]
    axis = np.r_[np.cos(theta), np.sin(theta), 0.0]
    mL, mR = centre - axis * spacing / 2, centre + axis * spacing / 2
    srcs = []
    while len(srcs) < positions:
        phi = rng.uniform(0, 2 * np.pi)
        dist = rng.uniform(0.4, 4.0)
        s = np.r_[centre[0] + dist * np.cos(phi), centre[1] + dist * np.sin(phi),
                  rng.uniform(0.6, min(2.2, dims[2] - 0.25))]
        if np.all(s > 0.25) and np.all(s < dims - 0.25):
            srcs.append(s)
    return dims, rt60, mL, mR, np.array(srcs)


def room_rirs(dims, rt60, mL, mR, srcs, max_order_cap: int = 20):
    """-> list over sources of [rir_L, rir_R] (float64 arrays, varying length)."""
    import pyroomacoustics as pra
    if max_order_cap == 0:
        e, mo = 0.5, 0
    else:
        try:
            e, mo = pra.inverse_sabine(rt60, dims)
        except ValueError:  # Sabine cannot make it that short: a dead room
            e, mo = 0.99, 3
    room = pra.ShoeBox(list(dims), fs=RATE, materials=pra.Material(e),
                       max_order=int(min(mo, max_order_cap)))
    for s in srcs:
        room.add_source(list(map(float, s)))
    room.add_microphone_array(np.c_[mL, mR])
    room.compute_rir()
    return [[room.rir[0][k], room.rir[1][k]] for k in range(len(srcs))]


def build_bank(n_rooms: int, positions: int = 8, taps: int = 6400, seed: int = 0,
               max_order_cap: int = 20, verbose: bool = True) -> dict:
    rng = np.random.default_rng(seed)
    c = speed_of_sound()
    rirs = np.zeros((n_rooms, positions, 2, taps), dtype=np.float16)
    delay = np.zeros((n_rooms, positions), dtype=np.float64)
    meta = np.zeros((n_rooms, 6), dtype=np.float64)  # dims(3), rt60, spacing, cap
    src_pos = np.zeros((n_rooms, positions, 3))
    mics = np.zeros((n_rooms, 2, 3))
    fade = np.ones(taps)
    nf = min(512, taps // 4)
    fade[-nf:] = 0.5 + 0.5 * np.cos(np.linspace(0, np.pi, nf))
    t0 = time.time()
    for r in range(n_rooms):
        dims, rt60, mL, mR, srcs = draw_room(rng, positions)
        hs = room_rirs(dims, rt60, mL, mR, srcs, max_order_cap)
        for k, (hl, hr) in enumerate(hs):
            for m, h in enumerate((hl, hr)):
                h = h[:taps]
                rirs[r, k, m, : len(h)] = (h * fade[: len(h)]).astype(np.float16)
            delay[r, k] = (np.linalg.norm(srcs[k] - mR) - np.linalg.norm(srcs[k] - mL)) / c * RATE
        meta[r] = [*dims, rt60, np.linalg.norm(mR - mL), max_order_cap]
        src_pos[r], mics[r] = srcs, np.stack([mL, mR])
        if verbose and (r + 1) % 50 == 0:
            print(f"  {r + 1}/{n_rooms} rooms ({time.time() - t0:.0f} s)", file=sys.stderr)
    return {"rirs": rirs, "delay": delay, "meta": meta, "src_pos": src_pos, "mics": mics,
            "seed": np.int64(seed)}


def load_bank(path) -> dict:
    z = np.load(path)
    return {k: z[k] for k in z.files}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--rooms", type=int, default=600)
    ap.add_argument("--positions", type=int, default=8)
    ap.add_argument("--taps", type=int, default=6400)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args(argv)
    b = build_bank(a.rooms, a.positions, a.taps, a.seed)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    np.savez(a.out, **b)
    print(f"wrote {a.out}: {a.rooms} rooms x {a.positions} positions x {a.taps} taps; spacing "
          f"{b['meta'][:, 4].min():.3f}-{b['meta'][:, 4].max():.3f} m; |delay| max "
          f"{np.abs(b['delay']).max():.2f} samples", file=sys.stderr)


if __name__ == "__main__":
    main()
