#!/usr/bin/env python3
"""Measured acoustics: tded on a dummy head (KEMAR HRIRs) instead of a simulated free field.

Every other evaluation set here is simulated (pyroomacoustics: point microphones in free air).
Real arrays sit on a body (a robot head, a device housing) that diffracts sound, so the delay
between the microphones depends on frequency: on KEMAR the low-frequency delay of a source at
the side is 1.3-1.6x the broadband one. An estimator that weights frequencies
differently from a flat PHAT then sees another delay, and issue 11 reports exactly that for the
learned encoder v1 (it overestimated lateral delays by about 0.06 ms where GCC-PHAT stayed
within 0.01 ms). This check measures the shipped defaults on measured head-related impulse
responses:

- HRIRs: MIT KEMAR, normal pinna (Gardner & Martin 1994; 710 directions, 44.1 kHz, 512 taps),
  the SOFA file Debian ships in ``libmysofa1`` (/usr/share/libmysofa/); read with h5py,
  resampled to 16 kHz. Receiver 0 is the left ear, so channel 0 = left as tded expects.
- Directions: the 72 azimuths (5-deg steps) of each elevation from -20 to +20 deg (360).
- Truth: the interaural time difference of the HRIR pair, taken where their broadband
  cross-correlation peaks (computed at 44.1 kHz, upsampled x16; Katz & Noisternig's "MaxIACCr"
  ITD). It gives 0.723 ms at azimuth 90 deg. Sign as everywhere in tded: > 0 = the right ear
  later = the source is on the left.
- Clips: a source of the evaluation's pool (recorded speech, music in a quarter of clips;
  ``eval/fetch_sources.sh``) through the pair, white noise independent per ear at the clip's
  SNR (cycled over --snr), then scaled like generate.py's clips. No room: HRIRs are anechoic.
- Spacing given to tded (``--mic-distance``): the free-field spacing whose end-fire delay is the
  head's largest ITD (0.25 m). KEMAR's ears are 0.18 m apart, but a head delays lateral sound
  more than free air; a user who enters 0.18 m with ``max_delay_ms = "auto"`` cuts the search
  range to 0.64 ms, short of the 0.72-ms truth at the side (--spacing 0.18 shows it).

Reported per method: MAE (ms), and the lateral bias: the mean of error x sign(truth) over
sources more than 60 deg off the front (lateral angle), > 0 when a method overestimates how far
to the side a source is. Offline rows are ``tded analyze --whole`` per variant and numpy
GCC-PHAT over the spacing's lags (``ref-gcc-phat-geo``); with --live, 4-s clips go through
the daemon (``tded run --input --echo``) and every line with t >= 1 s while the source is
active is scored (smoothed delay), beside the numpy running-average GCC-PHAT.

    python3 eval/kemar.py --live                      # offline 72 ms, 0.5 s, 1 s; and the daemon
    python3 eval/kemar.py --variant 'coh=--pooling phat+coh' --live-variant 'coh=engine.pooling="phat+coh"'
    python3 eval/kemar.py --sphere 0.09 --sources eval/out/devsources   # tuning: a model head
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import fftconvolve, resample_poly

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import classical  # noqa: E402
import generate as gen  # noqa: E402
import live as live_mod  # noqa: E402
import run as run_mod  # noqa: E402
import sources as src_mod  # noqa: E402

sys.path.insert(0, str(HERE.parent / "train"))
from tded_train import head  # noqa: E402  (numpy/scipy only: the sphere model, the ITD convention)

RATE = 16000
DEFAULT_SOFA = Path("/usr/share/libmysofa/MIT_KEMAR_normal_pinna.sofa")
ELEVATIONS = (-20.0, -10.0, 0.0, 10.0, 20.0)
EFFECTIVE_SPACING_M = 0.25   # free-field spacing with KEMAR's largest ITD (0.723 ms x 343 m/s)
LATERAL_DEG = 60.0
PRE_ROLL = 1024              # samples of source before the clip (the HRIRs' full response)


class KemarError(RuntimeError):
    pass


def load_hrirs(sofa: Path) -> tuple[np.ndarray, np.ndarray, float]:
    """(positions (M, 3) [azimuth deg, elevation deg, distance m], IRs (M, 2, N), rate)."""
    try:
        import h5py
    except ImportError as e:
        raise KemarError("h5py is needed to read SOFA files: pip install h5py") from e
    if not sofa.is_file():
        raise KemarError(f"no SOFA file at {sofa}: install Debian's libmysofa1 "
                         f"(scripts/install-deps.sh does) or pass --sofa")
    with h5py.File(str(sofa), "r") as f:
        pos = np.asarray(f["SourcePosition"][:], float)
        ir = np.asarray(f["Data.IR"][:], float)
        rate = float(np.asarray(f["Data.SamplingRate"][:]).ravel()[0])
        recv = np.asarray(f["ReceiverPosition"][:], float).reshape(2, -1)
    if ir.ndim != 3 or ir.shape[1] != 2 or recv[0, 1] <= recv[1, 1]:
        raise KemarError(f"{sofa}: expected two receivers, the first on the left (+y)")
    return pos, ir, rate


def itd_ms(left: np.ndarray, right: np.ndarray, rate: float) -> float:
    """ITD of an HRIR pair (ms; > 0 = right later): where their cross-correlation peaks, on a
    grid 16x finer than the sampling (the training's convention, ``head.broadband_itd``)."""
    return 1000.0 * head.broadband_itd(np.stack([left, right]), rate) / rate


def lateral_deg(azimuth: float, elevation: float) -> float:
    """Angle off the median plane, + toward the left ear (SOFA azimuth counter-clockwise)."""
    a, e = math.radians(azimuth), math.radians(elevation)
    return math.degrees(math.asin(max(-1.0, min(1.0, math.sin(a) * math.cos(e)))))


def directions(pos: np.ndarray, ir: np.ndarray, rate: float) -> list[dict]:
    """The directions used, each with its 16-kHz HRIR pair and truth."""
    out = []
    for i in range(len(pos)):
        az, el = float(pos[i, 0]), float(pos[i, 1])
        if not any(abs(el - e) < 1e-6 for e in ELEVATIONS):
            continue
        pair = resample_poly(ir[i], RATE, int(round(rate)), axis=1)
        out.append({"azimuth": az, "elevation": el, "lateral": lateral_deg(az, el),
                    "itd_ms": itd_ms(ir[i, 0], ir[i, 1], rate), "hrir": pair})
    if not out:
        raise KemarError("the SOFA file has no direction at elevations "
                         + ", ".join(f"{e:g}" for e in ELEVATIONS))
    return out


def sphere_directions(radius: float) -> list[dict]:
    """The same grid of directions on the rigid-sphere model (train/tded_train/head.py) instead
    of KEMAR: a tuning stand-in for a head that the evaluation's KEMAR check never sees."""
    out = []
    for el in ELEVATIONS:
        for az in np.arange(0.0, 360.0, 5.0):
            lat = lateral_deg(float(az), el)
            pair = head.sphere_hrirs(math.radians(lat), radius)
            out.append({"azimuth": float(az), "elevation": el, "lateral": lat,
                        "itd_ms": itd_ms(pair[0], pair[1], RATE), "hrir": pair})
    return out


def make_clips(out_dir: Path, dirs: list[dict], pool, seconds: float, snrs: list[float],
               seed: int, n: int, activity: bool = False) -> list[dict]:
    """Write n clips (direction i % len(dirs) of a shuffled order, SNR cycled); their rows."""
    rng = np.random.default_rng([seed, int(round(seconds * 1000)), 4242])
    order = rng.permutation(len(dirs))
    music = [s for s in pool if s.kind == "music"]
    speech = [s for s in pool if s.kind != "music"] or music
    clip = int(round(seconds * RATE))
    rows = []
    for k in range(n):
        d = dirs[order[k % len(dirs)]]
        group = music if (music and rng.uniform() < 0.25) else speech
        src = group[int(rng.integers(len(group)))]
        seg, pre = gen.pick_segment(src.audio, clip, PRE_ROLL, rng)
        wet = np.stack([fftconvolve(seg, d["hrir"][0]), fftconvolve(seg, d["hrir"][1])])
        x = wet[:, pre:pre + clip]
        if x.shape[1] < clip:
            x = np.pad(x, ((0, 0), (0, clip - x.shape[1])))
        snr = float(snrs[k % len(snrs)])
        x = gen.add_noise(x, snr, rng)
        peak = float(np.max(np.abs(x)))
        if peak > 0:
            x *= 0.9 / peak
        name = f"kemar-{int(round(seconds * 1000))}ms-{k:04d}.wav"
        sf.write(str(out_dir / name), x.T.astype(np.float32), RATE, subtype="PCM_16")
        rows.append({"file": name, "delay_ms": d["itd_ms"], "azimuth": d["azimuth"],
                     "elevation": d["elevation"], "lateral": d["lateral"], "snr_db": snr,
                     "source": src.name, "source_kind": src.kind,
                     "active": gen.activity(seg[pre:pre + clip], clip) if activity else ""})
    return rows


def write_truth(path: Path, rows: list[dict]) -> None:
    """The clips' truth (one row per clip, the columns of make_clips' rows)."""
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def summarise(rows: list[dict], est: dict[str, float]) -> dict:
    """MAE, median, lateral bias and MAE per SNR of one method's estimates {file: ms}."""
    err = np.array([est[r["file"]] - r["delay_ms"] for r in rows])
    sgn = np.sign([r["delay_ms"] for r in rows])
    lat = np.array([abs(r["lateral"]) > LATERAL_DEG for r in rows])
    out = {"n": len(rows), "mae_ms": float(np.mean(np.abs(err))),
           "median_ms": float(np.median(np.abs(err))),
           "lateral_bias_ms": float(np.mean((err * sgn)[lat])) if lat.any() else float("nan"),
           "lateral_mae_ms": float(np.mean(np.abs(err[lat]))) if lat.any() else float("nan"),
           "by_snr": {}}
    for snr in sorted({r["snr_db"] for r in rows}):
        m = np.array([r["snr_db"] == snr for r in rows])
        out["by_snr"][f"{snr:g}"] = float(np.mean(np.abs(err[m])))
    return out


def offline(tded: Path, rows: list[dict], clip_dir: Path, variants: list[tuple[str, str]],
            spacing: float) -> dict[str, dict]:
    """{label: summary} for tded variants (analyze --whole) and numpy GCC-PHAT."""
    res = {}
    clips = [clip_dir / r["file"] for r in rows]
    for label, args in variants:
        got, _ = run_mod.run_tded(tded, args.split(), clips, spacing, None, 400, label)
        est = {}
        for r in rows:
            v = got.get(r["file"], {}).get("delay_ms")
            if not run_mod._finite(v):
                raise KemarError(f"{label}: no finite delay_ms for {r['file']}")
            est[r["file"]] = float(v)
        res[label] = summarise(rows, est)
    est = {}
    for r in rows:
        x, _ = sf.read(str(clip_dir / r["file"]), dtype="float64", always_2d=True)
        lag = classical.gcc_phat_whole(x[:, 0], x[:, 1], classical.geometry_max_lag(spacing))
        est[r["file"]] = 1000.0 * lag / RATE
    res["ref-gcc-phat-geo"] = summarise(rows, est)
    return res


def live(tded: Path, rows: list[dict], clip_dir: Path, variants: list[tuple[str, str]],
         spacing: float, work: Path) -> dict[str, dict]:
    """{label: summary} per published line (t >= 1 s, source active) of the daemon's smoothed
    delay, and the numpy running-average GCC-PHAT read at the same times."""
    per: dict[str, tuple[list[dict], dict]] = {}
    for label, args in list(variants) + [(live_mod.REF_LABEL, None)]:
        lrows, est = [], {}
        for r in rows:
            if args is None:
                x, _ = sf.read(str(clip_dir / r["file"]), dtype="float64", always_2d=True)
                ref = classical.LiveGccPhat(x[:, 0], x[:, 1],
                                            max_lag=classical.geometry_max_lag(spacing))
                lines = [{"t": (k + 1) / 20.0} for k in range(len(r["active"]))]
            else:
                flags, cfg = live_mod.parse_variant(args)
                lines = live_mod.run_daemon(tded, clip_dir / r["file"], spacing, flags, cfg, work)
            for ln in lines:
                t = float(ln["t"])
                if t < live_mod.T_MIN or not live_mod.active_at(r["active"], t):
                    continue
                v = ref.delay_at(t) * 1000.0 / RATE if args is None else ln.get("delay_ms")
                if not run_mod._finite(v):
                    raise KemarError(f"{label}: no finite delay at t={t} in {r['file']}")
                key = f"{r['file']}@{t:.2f}"
                lrows.append(dict(r, file=key))
                est[key] = float(v)
        per[label] = (lrows, est)
    return {label: summarise(lr, est) for label, (lr, est) in per.items()}


def table(title: str, res: dict[str, dict], snrs: list[float]) -> list[str]:
    snr_names = " / ".join(f"{s:g}" for s in snrs)
    out = [f"### {title}", "",
           f"| method | n | MAE | median | lateral (> {LATERAL_DEG:g} deg) MAE | lateral bias "
           f"| MAE by SNR {snr_names} dB |", "|---|---|---|---|---|---|---|"]
    for label, s in res.items():
        by = " / ".join(f"{s['by_snr'][f'{x:g}']:.3f}" for x in snrs)
        out.append(f"| {label} | {s['n']} | {s['mae_ms']:.4f} | {s['median_ms']:.4f} | "
                   f"{s['lateral_mae_ms']:.4f} | {s['lateral_bias_ms']:+.4f} | {by} |")
    return out + [""]


def _variants(items: list[str], flag: str, default: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [run_mod.label_args(it, flag) for it in items] or default


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sofa", type=Path, default=DEFAULT_SOFA)
    ap.add_argument("--sphere", type=float, default=None, metavar="RADIUS",
                    help="a rigid sphere of this radius (m) instead of KEMAR (for tuning)")
    ap.add_argument("--sources", default=None, help="sources root (default $TDE_SOURCES or "
                    "data/sources: the evaluation's pool, eval/fetch_sources.sh)")
    ap.add_argument("--tded", default=None, help="tded binary (else $TDED, .build/release)")
    ap.add_argument("--seconds", type=float, nargs="*", default=[0.072, 0.5, 1.0],
                    help="offline clip lengths (s); one set of --n clips each (none: live only)")
    ap.add_argument("--n", type=int, default=360, help="offline clips per length")
    ap.add_argument("--snr", default="-10,0,10,20,30", help="SNRs (dB), cycled over the clips")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--variant", action="append", default=[], metavar="LABEL=ARGS",
                    help="tded analyze --whole options (default: the defaults and the "
                         "classical weighting)")
    ap.add_argument("--live", action="store_true", help="also the daemon on 4-s clips")
    ap.add_argument("--live-n", type=int, default=72)
    ap.add_argument("--live-variant", action="append", default=[], metavar="LABEL=ARGS",
                    help="as eval/run.py's (default: the defaults and phat+coh)")
    ap.add_argument("--spacing", type=float, default=EFFECTIVE_SPACING_M,
                    help="--mic-distance given to tded and the lag range of the references")
    ap.add_argument("--json", type=Path, default=None, help="write the figures here too")
    ap.add_argument("--out", type=Path, default=None, help="keep the clips and their truth.csv "
                    "here (default: a temporary folder, removed)")
    a = ap.parse_args(argv)
    try:
        snrs = [float(s) for s in a.snr.split(",") if s.strip()]
        variants = _variants(a.variant, "--variant", [("default", ""),
                                         ("classical", "--pooling phat-beta=0.7+snr")])
        lvariants = _variants(a.live_variant, "--live-variant", [("default", ""),
                                               ("phat+coh", 'engine.pooling="phat+coh"')])
        tded = run_mod.find_tded(a.tded)
        if a.sphere:
            dirs = sphere_directions(a.sphere)
        else:
            pos, ir, rate = load_hrirs(a.sofa)
            dirs = directions(pos, ir, rate)
        pool = src_mod.load_pool(a.sources, ("speech", "music"))
        kinds = Counter(p.kind for p in pool)
        what = f"rigid sphere r = {a.sphere:g} m" if a.sphere else "KEMAR (measured HRIRs)"
        lines = [f"# {what} check: {len(dirs)} directions, elevations "
                 f"{ELEVATIONS[0]:g}..{ELEVATIONS[-1]:g} deg; tded {tded}; spacing given "
                 f"{a.spacing:g} m; ITD at the side {max(d['itd_ms'] for d in dirs):.3f} ms; "
                 f"sources: " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())), ""]
        report: dict = {"directions": len(dirs), "spacing_m": a.spacing}
        with tempfile.TemporaryDirectory(prefix="tded-kemar-") as tmp:
            tmp = Path(tmp)
            out = a.out or tmp
            out.mkdir(parents=True, exist_ok=True)
            made: list[dict] = []
            for secs in a.seconds:
                rows = make_clips(out, dirs, pool, secs, snrs, a.seed, a.n)
                write_truth(out / "truth.csv", made := made + rows)
                res = offline(tded, rows, out, variants, a.spacing)
                report[f"whole-{secs:g}s"] = res
                lines += table(f"Offline, {a.n} clips of {secs:g} s (`analyze --whole`)",
                               res, snrs)
            if a.live:
                rows = make_clips(out, dirs, pool, 4.0, snrs, a.seed, a.live_n, activity=True)
                write_truth(out / "truth.csv", made := made + rows)
                res = live(tded, rows, out, lvariants, a.spacing, tmp)
                report["live"] = res
                lines += table(f"Live, {a.live_n} clips of 4 s, per published line "
                               f"(smoothed; t >= 1 s, source active)", res, snrs)
        print("\n".join(lines))
        if a.json:
            a.json.write_text(json.dumps(report, indent=1))
    except (KemarError, run_mod.EvalError, live_mod.EvalLiveError, RuntimeError, OSError) as e:
        print(f"kemar: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
