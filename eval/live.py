"""Live metric (issue 10 item 3): per-update error of the daemon's published lines.

Each clip of a live set (multi-second single-source clips made by ``generate.py --activity``)
is replayed through ``tded run --input CLIP --echo`` (unpaced: as fast as the engine runs; the
daemon exits at the end of the file). ``--echo`` prints on stdout exactly the line the daemon
publishes on its socket (Daemon.swift: the same string goes to ``publisher.publish`` and to
stdout), so no socket client can drop lines. Every line with t >= T_MIN and the source active
at t (truth.csv's ``active`` column, see generate.py) is scored: the smoothed ``delay_ms`` and
the raw ``raw_delay_ms`` against the clip's true delay.

Beside it, a live classical reference computed in numpy (classical.LiveGccPhat: exponentially
averaged cross-spectrum, 1024-sample Hann frames, hop 256, time constant 0.3 s, PHAT on the
average, parabolic peak, searching the lags the clip's spacing allows like the daemon's
``max_delay_ms = "auto"``) is read at the same update times. It is labelled
``ref-live-gcc-phat`` and is not tded.

Any failure is loud: a daemon that exits non-zero, prints a non-JSON line, publishes no line at
an active update time, or a null delay there, stops the evaluation (EvalLiveError).
"""
from __future__ import annotations

import json
import math
import os
import shlex
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

import classical
import generate as gen

RATE = 16000
T_MIN = 1.0          # seconds: lines before this are the daemon's start-up
REF_LABEL = "ref-live-gcc-phat"


class EvalLiveError(RuntimeError):
    pass


def parse_variant(args: str) -> tuple[list[str], list[str]]:
    """Split a live variant's ARGS into `tded run` flags and TOML config lines
    (section.key=VALUE tokens; VALUE is written verbatim, so strings need quotes)."""
    flags, cfg = [], {}
    for tok in args.split():
        head, sep, value = tok.partition("=")
        if sep and not tok.startswith("-") and "." in head:
            section, key = head.split(".", 1)
            cfg.setdefault(section, []).append(f"{key} = {value}")
        else:
            flags.append(tok)
    lines = []
    for section, kv in cfg.items():
        lines.append(f"[{section}]")
        lines += kv
    return flags, lines


def config_text(mic_distance: float, extra_lines: list[str]) -> str:
    """A TOML config: the variant's lines, plus engine.mic_distance and log.level."""
    sections: dict[str, list[str]] = {"engine": [f"mic_distance = {mic_distance:.6f}"],
                                      "log": ['level = "warning"']}
    cur = None
    for ln in extra_lines:
        if ln.startswith("["):
            cur = ln.strip("[]")
            sections.setdefault(cur, [])
        else:
            key = ln.split("=", 1)[0].strip()
            sections[cur] = [x for x in sections[cur] if x.split("=", 1)[0].strip() != key]
            sections[cur].append(ln)
    out = []
    for sec, kv in sections.items():
        out.append(f"[{sec}]")
        out += kv
    return "\n".join(out) + "\n"


def run_daemon(tded: Path, clip: Path, mic_distance: float, flags: list[str],
               cfg_lines: list[str], workdir: Path, timeout: float = 600) -> list[dict]:
    """Every line the daemon publishes for one clip (parsed JSON), in order."""
    cfg = workdir / f"live-{os.getpid()}-{clip.stem}.toml"
    cfg.write_text(config_text(mic_distance, cfg_lines))
    sock = workdir / f"s-{os.getpid()}-{clip.stem}.sock"
    cmd = [str(tded), "run", "--config", str(cfg), "--input", str(clip), "--echo",
           "--socket", str(sock)] + flags
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise EvalLiveError(f"tded run timed out on {clip.name}: {shlex.join(cmd)}") from e
    except OSError as e:
        raise EvalLiveError(f"cannot run {tded}: {e}") from e
    finally:
        cfg.unlink(missing_ok=True)
        sock.unlink(missing_ok=True)
    if r.returncode != 0:
        raise EvalLiveError(f"tded run exited {r.returncode} on {clip.name} "
                            f"({shlex.join(cmd)}):\n{(r.stderr or r.stdout)[-2000:]}")
    lines = []
    for ln in r.stdout.splitlines():
        ln = ln.strip()
        if not ln:
            continue
        try:
            obj = json.loads(ln)
        except json.JSONDecodeError as e:
            raise EvalLiveError(f"tded run printed a line that is not JSON on {clip.name}: "
                                f"{ln[:200]} ({e})") from e
        if not isinstance(obj, dict) or "t" not in obj:
            raise EvalLiveError(f"tded run line without t on {clip.name}: {ln[:200]}")
        lines.append(obj)
    if not lines:
        raise EvalLiveError(f"tded run published no line for {clip.name}")
    return lines


def active_at(active: str, t: float) -> bool:
    """Is the source active at update time t (truth.csv `active`: char k is t = (k+1)/20 s)?"""
    k = int(round(t * RATE / gen.ACTIVE_HOP)) - 1
    return 0 <= k < len(active) and active[k] == "1"


def score_clip(row: dict, lines: list[dict], ref: classical.LiveGccPhat | None) -> dict:
    """Per-update errors (ms) of one clip: {'smoothed': [...], 'raw': [...], 'ref': [...]}."""
    truth = float(row["delay_ms"])
    active = row.get("active") or ""
    if not active:
        raise EvalLiveError(f"{row['file']}: no `active` column in truth.csv (make the live "
                            f"set with generate.py --activity)")
    out = {"smoothed": [], "raw": [], "ref": [], "t": []}
    for obj in lines:
        t = obj["t"]
        if not isinstance(t, (int, float)) or t < T_MIN - 1e-9 or not active_at(active, t):
            continue
        sm, raw = obj.get("delay_ms"), obj.get("raw_delay_ms")
        for name, v in (("delay_ms", sm), ("raw_delay_ms", raw)):
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
                raise EvalLiveError(f"{row['file']}: line at t={t} has no finite {name} "
                                    f"({json.dumps(obj)[:200]})")
        out["t"].append(float(t))
        out["smoothed"].append(float(sm) - truth)
        out["raw"].append(float(raw) - truth)
        if ref is not None:
            d = ref.delay_at(float(t))
            if not math.isfinite(d):
                raise EvalLiveError(f"{row['file']}: live reference has no value at t={t}")
            out["ref"].append(d * 1000.0 / RATE - truth)
    # every active update time >= T_MIN must have a line (nothing missing is scored as 0)
    n_samples = int(row["samples"])
    want = [(k + 1) * gen.ACTIVE_HOP / RATE for k, c in enumerate(active)
            if c == "1" and (k + 1) * gen.ACTIVE_HOP / RATE >= T_MIN - 1e-9
            and (k + 1) * gen.ACTIVE_HOP <= n_samples]
    got = {round(t * 1000) for t in out["t"]}
    missing = [t for t in want if round(t * 1000) not in got]
    if missing:
        raise EvalLiveError(f"{row['file']}: no published line at {len(missing)} active update "
                            f"time(s), e.g. t={missing[0]:.3f} s (publish rate must be 20 Hz)")
    return out


def _metrics(err: np.ndarray) -> dict:
    if len(err) == 0:
        return {"n": 0}
    a = np.abs(err)
    return {"n": int(len(err)), "mae_ms": float(a.mean()), "rmse_ms": float(np.sqrt(np.mean(err ** 2))),
            "median_ms": float(np.median(a)), "p90_ms": float(np.percentile(a, 90))}


def evaluate_live(data_dir: Path, tded: Path, variants: list[tuple[str, str]],
                  jobs: int = 1, limit: int | None = None) -> dict:
    """Run every live variant (label, ARGS) on every clip; returns the live results block."""
    truth = gen.read_truth(data_dir / "truth.csv")
    truth = [r for r in truth if r["kind"] == "single"]
    if limit:
        truth = truth[:limit]
    if not truth:
        raise EvalLiveError(f"{data_dir}: no single-source clips")
    for r in truth:
        if not (data_dir / r["file"]).is_file():
            raise EvalLiveError(f"clip unreadable: {data_dir / r['file']}")
    errs = {lab: {} for lab, _ in variants}
    ref_errs: dict[str, list] = {}
    wall = {}
    with tempfile.TemporaryDirectory(prefix="tded-live-") as tmp:
        tmpd = Path(tmp)
        # the numpy reference, once per clip
        t0 = time.perf_counter()
        refs = {}
        for r in truth:
            x, sr = sf.read(str(data_dir / r["file"]), dtype="float64", always_2d=True)
            if sr != RATE or x.shape[1] != 2:
                raise EvalLiveError(f"{r['file']}: expected 16 kHz stereo")
            refs[r["file"]] = classical.LiveGccPhat(
                x[:, 0], x[:, 1], max_lag=classical.geometry_max_lag(float(r["mic_distance"])))
        wall[REF_LABEL] = time.perf_counter() - t0
        for lab, args in variants:
            flags, cfg_lines = parse_variant(args)

            def one(r, flags=flags, cfg_lines=cfg_lines):
                lines = run_daemon(tded, data_dir / r["file"], float(r["mic_distance"]), flags,
                                   cfg_lines, tmpd)
                return r["file"], lines

            t0 = time.perf_counter()
            if jobs > 1:
                from concurrent.futures import ThreadPoolExecutor
                with ThreadPoolExecutor(jobs) as ex:
                    got = dict(ex.map(one, truth))
            else:
                got = dict(one(r) for r in truth)
            wall[lab] = time.perf_counter() - t0
            for r in truth:
                s = score_clip(r, got[r["file"]], refs[r["file"]])
                errs[lab][r["file"]] = s
                ref_errs.setdefault(r["file"], s["ref"])
    # aggregate: overall and per SNR / RT60 / room, smoothed + raw per variant, ref once
    labels = []
    series: dict[str, dict[str, np.ndarray]] = {}
    for lab, _ in variants:
        for kind in ("smoothed", "raw"):
            name = f"{lab} ({kind})"
            labels.append(name)
            series[name] = {f: np.asarray(errs[lab][f][kind]) for f in errs[lab]}
    labels.append(REF_LABEL)
    series[REF_LABEL] = {f: np.asarray(v) for f, v in ref_errs.items()}
    block = {"n_clips": len(truth), "labels": labels, "overall": {}, "by": {}, "wall_s": wall,
             "t_min_s": T_MIN, "clip_seconds": float(np.mean([int(r["samples"]) for r in truth]))
             / RATE}
    for name in labels:
        block["overall"][name] = _metrics(np.concatenate([series[name][r["file"]] for r in truth]))
    for fld in ("snr_db", "rt60", "room", "source_kind"):
        per = {}
        for v in sorted({r[fld] for r in truth}, key=_sort_key):
            rows = [r for r in truth if r[fld] == v]
            per[v] = {name: _metrics(np.concatenate([series[name][r["file"]] for r in rows]))
                      for name in labels}
            per[v]["n_clips"] = len(rows)
        block["by"][fld] = per
    return block


def _sort_key(v):
    try:
        return (0, float(v))
    except (TypeError, ValueError):
        return (1, str(v))


def markdown(block: dict, data_dir: str, embedded: bool = False) -> list[str]:
    L = [f"## Live: per-update error of the daemon's published lines\n"]
    if embedded and block.get("meta", {}).get("command"):
        L.append(f"Made by `{block['meta']['command']}` on {block['meta']['date']} (taken "
                 f"into these results with --live-json).\n")
    L += [
         f"`tded run --input CLIP --echo` (unpaced) on {block['n_clips']} single-source clips "
         f"of {block['clip_seconds']:.1f} s (`{data_dir}`); every line with t >= "
         f"{block['t_min_s']:.0f} s while the source is active (truth.csv `active`: dry-source "
         f"RMS over the last 0.1 s within {gen.ACTIVE_DB:.0f} dB of the clip's loudest). "
         f"`(smoothed)` = `delay_ms`, `(raw)` = `raw_delay_ms`. `{REF_LABEL}`: numpy, not tded: "
         f"exponentially averaged cross-spectrum GCC-PHAT (1024-sample Hann frames, hop 256, "
         f"tau {classical.LIVE_TAU_S} s, PHAT on the average, parabolic peak, lags the spacing allows) read at the same "
         f"update times. Wall: " + ", ".join(f"{k} {v:.0f} s" for k, v in block["wall_s"].items())
         + ".\n",
         "| live method | updates | MAE | RMSE | median | p90 |", "|---|---|---|---|---|---|"]
    for name in block["labels"]:
        m = block["overall"][name]
        L.append(f"| {name} | {m['n']} | {m.get('mae_ms', float('nan')):.3f} | "
                 f"{m.get('rmse_ms', float('nan')):.3f} | {m.get('median_ms', float('nan')):.3f}"
                 f" | {m.get('p90_ms', float('nan')):.3f} |")
    L.append("")
    L += _mae_tables(block, (("snr_db", "SNR dB"), ("rt60", "nominal RT60 s"), ("room", "room"),
                             ("source_kind", "source kind")), "Live MAE (ms) per update by")
    return L


def summary(block: dict) -> list[str]:
    """Compact live tables for summary.md."""
    L = [f"**Live, {block['n_clips']} clips of {block['clip_seconds']:.0f} s** (per-update "
         f"error, ms, lines with t >= {block['t_min_s']:.0f} s while the source is active; "
         f"`{REF_LABEL}` is numpy, not tded)\n",
         "| live method | updates | MAE | RMSE | median |", "|---|---|---|---|---|"]
    for name in block["labels"]:
        m = block["overall"][name]
        L.append(f"| {name} | {m['n']} | {m['mae_ms']:.3f} | {m['rmse_ms']:.3f} | "
                 f"{m['median_ms']:.3f} |")
    L.append("")
    L += _mae_tables(block, (("snr_db", "SNR dB"), ("rt60", "nominal RT60 s")), "Live MAE (ms) by")
    return L


def _mae_tables(block: dict, fields, heading: str) -> list[str]:
    """One MAE table per (field, title): a row per value, a column per label."""
    L = []
    for fld, title in fields:
        per = block["by"][fld]
        L.append(f"{heading} {title}:\n")
        L.append(f"| {title} | clips | " + " | ".join(block["labels"]) + " |")
        L.append("|---|---|" + "---|" * len(block["labels"]))
        for v, d in per.items():
            L.append(f"| {v} | {d['n_clips']} | " + " | ".join(
                f"{d[n]['mae_ms']:.3f}" if d[n].get("n") else "–" for n in block["labels"]) + " |")
        L.append("")
    return L
