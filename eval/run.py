#!/usr/bin/env python3
"""Score every tded method and post-processor on a TDE-Simulation set.

    python3 eval/run.py --size small              # generate (if needed) + score the small set
    python3 eval/run.py --size full --jobs 2 --results eval/results/full

tded's rows come only from the shipped binary, ``tded analyze --whole`` (many files per call,
grouped by room so each call gets that room's ``--mic-distance``). Beside them, rows labelled
``ref-*`` are classical references computed in Python on the same clips (eval/classical.py:
whole-clip and Welch GCC-PHAT in numpy, pyroomacoustics SRP-PHAT and NormMUSIC): what a user
would write instead of running tded. They never feed a tded row. The IID baseline (louder
channel = side) is also computed here and only gives a left/right answer. ``--live`` adds the
live metric (eval/live.py): per-update error of ``tded run --input`` on multi-second clips.

It fails loudly (non-zero exit, one clear message) when tded is missing, a clip is unreadable,
tded rejects a clip, or a method returns no estimate for a clip: nothing missing is ever
scored as zero error.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
import classical  # noqa: E402
import generate as gen  # noqa: E402
import live as live_mod  # noqa: E402

RATE = 16000
LR_MIN_AZIMUTH = 5  # left/right accuracy ignores clips within +-5 deg of broadside
# Paper figures (GCC-PHAT, mean post-processing) for the comparison in eval/README.md.
PAPER = {"sim_moderate_mae_ms": 0.160, "sim_moderate_rmse_ms": 0.318,
         "mixture_mae_ms": {"0.1": 0.024, "0.3": 0.177, "0.5": 0.304, "0.7": 0.395, "0.9": 0.459}}


class EvalError(RuntimeError):
    """A condition that must stop the evaluation (reported, exit code 2)."""


# ---------------------------------------------------------------------------- tded discovery
def find_tded(explicit: str | None = None) -> Path:
    candidates = []
    if explicit:
        candidates.append(("--tded", explicit))
    elif os.environ.get("TDED"):
        candidates.append(("$TDED", os.environ["TDED"]))
    else:
        candidates += [("default", str(REPO / ".build" / "release" / "tded")),
                       ("default", str(REPO / ".build" / "debug" / "tded"))]
    for how, c in candidates:
        p = Path(c)
        if not p.exists() and shutil.which(c):
            p = Path(shutil.which(c))
        if p.is_file() and os.access(p, os.X_OK):
            return p
        if how != "default":
            raise EvalError(f"tded not found or not executable: {c} (from {how})")
    raise EvalError("tded binary not found: looked at .build/release/tded and .build/debug/tded; "
                    "build it with `swift build -c release` or pass --tded PATH / set $TDED")


def _run(cmd, timeout=None):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except OSError as e:
        raise EvalError(f"cannot run {cmd[0]}: {e}") from e


def method_available(tded: Path, method: str, clip: Path, mic_distance: float,
                     extra: list[str] = ()) -> tuple[bool, str]:
    """Does `tded analyze --whole --method M` give an estimate for one clip?"""
    try:
        r = _run([str(tded), "analyze", "--whole", "--method", method, "--mic-distance",
                  f"{mic_distance:.6f}"] + list(extra) + [str(clip)], timeout=600)
    except subprocess.TimeoutExpired:
        return False, "timed out on one clip"
    if r.returncode != 0:
        lines = (r.stderr.strip() or r.stdout.strip()).splitlines()
        return False, (lines[-1] if lines else "") + f" (exit {r.returncode})"
    for line in r.stdout.splitlines():
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict) and _finite(obj.get("delay_samples", obj.get("delay_ms"))):
            return True, ""
    return False, "no JSON estimate on stdout"


def label_args(item: str, flag: str) -> tuple[str, str]:
    """One LABEL=ARGS option value -> (label, args); EvalError names the flag when malformed."""
    lab, sep, args = item.partition("=")
    if not sep or not lab.strip():
        raise EvalError(f"{flag} wants LABEL=ARGS (got {item!r})")
    return lab.strip(), args


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


# ---------------------------------------------------------------------------- running tded
def run_tded(tded: Path, args: list[str], clips: list[Path], mic_distance: float,
             step: int | None, batch: int, label: str) -> tuple[dict, float]:
    """Estimates {basename: json} for clips (one room); raises EvalError on any failure.

    args: the configuration's tded analyze options (method, post, taper, model ...)."""
    out: dict[str, dict] = {}
    wall = 0.0
    for i in range(0, len(clips), batch):
        chunk = clips[i:i + batch]
        cmd = [str(tded), "analyze", "--whole"] + args + ["--mic-distance", f"{mic_distance:.6f}"]
        if step:
            cmd += ["--step", str(step)]
        cmd += [str(c) for c in chunk]
        t0 = time.perf_counter()
        r = _run(cmd)
        wall += time.perf_counter() - t0
        if r.returncode != 0:
            msg = (r.stderr.strip() or r.stdout.strip())[-2000:]
            raise EvalError(f"tded analyze failed (exit {r.returncode}) for {label} "
                            f"({' '.join(args)}) on {len(chunk)} clips starting {chunk[0].name}:"
                            f"\n{msg}")
        for line in r.stdout.splitlines():
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise EvalError(f"tded printed a line that is not JSON: {line[:200]} ({e})")
            f = obj.get("file")
            if f is None:
                raise EvalError(f"tded JSON line without a file field: {line[:200]}")
            out[Path(f).name] = obj  # --whole: one line per file; keep the last if several
    return out, wall


# ---------------------------------------------------------------------------- references
def _ref_one(task):
    name, path, mic_l, mic_r, refs = task
    try:
        x, sr = sf.read(str(path), dtype="float64", always_2d=True)
        if sr != RATE or x.shape[1] != 2:
            raise ValueError(f"expected 16 kHz stereo, got {sr} Hz x {x.shape[1]}")
        d = classical.reference_delays(x[:, 0], x[:, 1], mic_l, mic_r, refs)
    except Exception as e:  # reported with the clip's name by the caller
        return name, None, f"{type(e).__name__}: {e}"
    return name, {k: v * 1000.0 / RATE for k, v in d.items()}, None


def compute_references(truth: list[dict], data_dir: Path, refs: list[str],
                       jobs: int) -> tuple[dict, dict]:
    """{label: {file: delay_ms}} for the Python references on every clip, and the wall time
    per reference (split evenly; they run together), and how many clips were computed (the rest
came from the cache, see REF_CACHE). Raises EvalError on any failure: a clip
    without a finite answer is never scored."""
    if not refs:
        return {}, {}, 0
    cache_path = data_dir / REF_CACHE
    cache = _load_ref_cache(cache_path)
    version = _ref_version()
    keys = {r["file"]: _ref_key(data_dir / r["file"], version) for r in truth}
    todo = [r for r in truth
            if not all(lab in cache.get(keys[r["file"]] or "", {}) for lab in refs)]
    tasks = [(r["file"], data_dir / r["file"], gen.ROOMS[r["room"]]["mic_l"],
              gen.ROOMS[r["room"]]["mic_r"], tuple(refs)) for r in todo]
    t0 = time.perf_counter()
    if jobs > 1 and len(tasks) > 1:
        from concurrent.futures import ProcessPoolExecutor
        with ProcessPoolExecutor(jobs) as ex:
            results = list(ex.map(_ref_one, tasks, chunksize=16))
    else:
        results = [_ref_one(t) for t in tasks]
    wall = time.perf_counter() - t0
    for name, d, err in results:
        if err is not None:
            raise EvalError(f"reference estimators failed on {name}: {err}")
        if keys[name]:
            cache.setdefault(keys[name], {}).update(d)
    if results:
        _save_ref_cache(cache_path, cache)
    out: dict[str, dict] = {lab: {} for lab in refs}
    fresh = {name: d for name, d, _ in results}
    for r in truth:
        name = r["file"]
        d = fresh.get(name) or cache.get(keys[name] or "", {})
        for lab in refs:
            v = d.get(lab)
            if not _finite(v):
                raise EvalError(f"{lab} gave no finite delay for {name}: {v!r}")
            out[lab][name] = float(v)
    if todo and len(todo) < len(truth):
        print(f"note: references computed on {len(todo)} clips, {len(truth) - len(todo)} from "
              f"{cache_path}", file=sys.stderr)
    return out, {lab: wall / len(refs) for lab in refs}, len(todo)


# The references are deterministic: their answers are cached beside the clips (the data
# directory, ignored by git) under a key of the clip's name, size and mtime and a hash of
# eval/classical.py and the pyroomacoustics version, so a re-run with a new tded variant
# does not recompute them. Delete the file to force a recomputation.
REF_CACHE = "refs-cache.json"


def _ref_version() -> str:
    import hashlib
    from importlib import metadata
    h = hashlib.sha256((HERE / "classical.py").read_bytes())
    try:
        h.update(metadata.version("pyroomacoustics").encode())
    except metadata.PackageNotFoundError:
        pass
    return h.hexdigest()[:16]


def _ref_key(path: Path, version: str) -> str | None:
    try:
        st = path.stat()
    except OSError:
        return None  # unreadable: computed (and failing loudly) like any other clip
    return f"{path.name}|{st.st_size}|{st.st_mtime_ns}|{version}"


def _load_ref_cache(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def _save_ref_cache(path: Path, cache: dict) -> None:
    try:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(cache))
        tmp.replace(path)
    except OSError as e:
        print(f"note: cannot write the reference cache {path}: {e}", file=sys.stderr)


def machine_facts(tded: Path | None) -> dict:
    """CPU, OpenBLAS core, package versions and the tded commit, so that figures can be
    compared across machines (issue 9 item 5)."""
    import platform
    from importlib import metadata
    facts: dict = {"python": platform.python_version(), "cpus": os.cpu_count()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                facts["cpu_model"] = line.split(":", 1)[1].strip()
                break
        flags = next((ln for ln in Path("/proc/cpuinfo").read_text().splitlines()
                      if ln.startswith("flags")), "")
        facts["avx512f"] = " avx512f" in flags
    except OSError:
        facts["cpu_model"] = platform.processor() or "unknown"
    facts["OPENBLAS_CORETYPE"] = os.environ.get("OPENBLAS_CORETYPE", "")
    for pkg in ("numpy", "scipy", "pyroomacoustics", "torch", "soundfile"):
        try:
            facts[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            facts[pkg] = None
    try:
        r = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True,
                           text=True, timeout=20)
        facts["git_commit"] = r.stdout.strip() or None
        r = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, timeout=20)
        facts["git_dirty"] = bool(r.stdout.strip())
    except (OSError, subprocess.TimeoutExpired):
        facts["git_commit"] = None
    if tded is not None:
        facts["openblas_core"] = openblas_core(tded)
    return facts


def openblas_core(tded: Path) -> str | None:
    """The OpenBLAS kernel tded loads ("Core: X" that OpenBLAS prints with
    OPENBLAS_VERBOSE=2 when it starts), or None if it says nothing."""
    env = dict(os.environ, OPENBLAS_VERBOSE="2")
    try:
        r = subprocess.run([str(tded), "analyze", "--help"], capture_output=True, text=True,
                           env=env, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in (r.stderr + r.stdout).splitlines():
        if line.strip().startswith("Core:"):
            return line.split(":", 1)[1].strip()
    return None


# ---------------------------------------------------------------------------- scoring
def iid_side(path: Path) -> int:
    """IID baseline: +1 (left, positive delay) if the left channel is louder, else -1."""
    x, _ = sf.read(str(path), dtype="float64", always_2d=True)
    rl = float(np.sqrt(np.mean(x[:, 0] ** 2)))
    rr = float(np.sqrt(np.mean(x[:, 1] ** 2)))
    return 1 if rl > rr else -1


def metrics(err_ms: np.ndarray, est_ms: np.ndarray, true_ms: np.ndarray, az: np.ndarray) -> dict:
    m = {"n": int(len(err_ms))}
    if len(err_ms) == 0:
        return m
    a = np.abs(err_ms)
    m.update(mae_ms=float(a.mean()), rmse_ms=float(np.sqrt(np.mean(err_ms ** 2))),
             median_ms=float(np.median(a)))
    m.update(lr_acc=lr_accuracy(np.sign(est_ms), true_ms, az))
    return m


def lr_accuracy(pred_sign: np.ndarray, true_ms: np.ndarray, az: np.ndarray):
    keep = np.abs(az) >= LR_MIN_AZIMUTH
    if not keep.any():
        return None
    return float(np.mean(pred_sign[keep] == np.sign(true_ms[keep])))


def group_keys(row: dict) -> dict:
    keys = {"room": row["room"], "source_kind": row["source_kind"]}
    if row["kind"] == "single":
        keys.update(rt60=row["rt60"], snr_db=row["snr_db"])
    else:
        keys.update(distractor_level=row["distractor_level"])
    return keys


def score(truth: list[dict], estimates: dict, iid: dict) -> dict:
    """estimates: {label: {file: est_ms}}; iid: {file: ±1}. Returns the results structure."""
    res = {"methods": list(estimates), "sets": {}}
    for kind in ("single", "mixture"):
        rows = [r for r in truth if r["kind"] == kind]
        if not rows:
            continue
        true_ms = np.array([float(r["delay_ms"]) for r in rows])
        az = np.array([float(r["azimuth_deg"]) for r in rows])
        block = {"n": len(rows), "overall": {}, "by": {}}
        for label, est in estimates.items():
            e = np.array([est[r["file"]] for r in rows])
            block["overall"][label] = metrics(e - true_ms, e, true_ms, az)
        iid_pred = np.array([iid[r["file"]] for r in rows], float)
        block["overall"]["iid"] = {"n": len(rows), "lr_acc": lr_accuracy(iid_pred, true_ms, az)}
        fields = ["room", "source_kind"] + (["rt60", "snr_db"] if kind == "single"
                                            else ["distractor_level"])
        for fld in fields:
            values = sorted({r[fld] for r in rows}, key=_sort_key)
            per = {}
            for v in values:
                idx = np.array([r[fld] == v for r in rows])
                per[v] = {}
                for label, est in estimates.items():
                    e = np.array([est[r["file"]] for r in rows])[idx]
                    per[v][label] = metrics(e - true_ms[idx], e, true_ms[idx], az[idx])
                per[v]["iid"] = {"n": int(idx.sum()),
                                 "lr_acc": lr_accuracy(iid_pred[idx], true_ms[idx], az[idx])}
            block["by"][fld] = per
        if kind == "single":  # RT60 x SNR grid of MAE per method
            grid = {}
            for label, est in estimates.items():
                e_all = np.array([est[r["file"]] for r in rows])
                g = {}
                for rt in sorted({r["rt60"] for r in rows}, key=_sort_key):
                    for snr in sorted({r["snr_db"] for r in rows}, key=_sort_key):
                        idx = np.array([(r["rt60"] == rt and r["snr_db"] == snr) for r in rows])
                        if idx.any():
                            g[f"{rt}|{snr}"] = float(np.mean(np.abs(e_all[idx] - true_ms[idx])))
                grid[label] = g
            block["grid_mae_ms"] = grid
        res["sets"][kind] = block
    return res


def _sort_key(v):
    try:
        return (0, float(v))
    except (TypeError, ValueError):
        return (1, str(v))


# ---------------------------------------------------------------------------- reporting
def _fmt(v, pct=False):
    if v is None:
        return "–"
    if pct:
        return f"{100 * v:.1f} %"
    return f"{v:.3f}"


def markdown(res: dict, meta: dict) -> str:
    L = []
    L.append(f"# TDE-Simulation results ({meta['size']}, seed {meta['seed']})\n")
    if meta.get("note"):
        L.append(f"**{meta['note']}**\n")
    L.append(f"- command: `{meta['command']}`")
    L.append(f"- tded: `{meta['tded']}`; methods: {', '.join(meta['labels'])}; "
             f"step: {meta['step'] or 'tded default'}")
    L.append(f"- clips: {meta['n_clips']} ({meta['n_single']} single-source, "
             f"{meta['n_mixture']} mixtures); sources: {meta['sources']}")
    L.append(f"- tded wall time: {meta['tded_wall_s']:.1f} s for "
             f"{meta['audio_s']:.1f} s of audio per method "
             f"(date {meta['date']})")
    if meta.get("learned_model"):
        lm = meta["learned_model"]
        L.append(f"- learned model: `{lm['path']}` sha256 {lm['sha256'][:16]}, {lm['bytes']} "
                 f"bytes, written {lm['mtime']}")
    if meta.get("reference_labels"):
        L.append(f"- rows `ref-*` ({', '.join(meta['reference_labels'])}): classical references "
                 f"computed in Python (eval/classical.py) on the same clips, not by tded; "
                 f"{meta['reference_wall_s']:.1f} s wall for all of them on "
                 f"{meta.get('reference_clips_computed', meta['n_clips'])} clips (the others' "
                 f"answers from {REF_CACHE}). Every other row comes from the tded binary alone")
    if meta.get("machine"):
        L.append("- machine: " + machine_line(meta["machine"]))
    L.append(f"- errors in ms; L/R = left/right accuracy over clips with |azimuth| >= "
             f"{LR_MIN_AZIMUTH} deg; IID = louder channel (Python baseline, side only)\n")
    labels = meta["labels"]
    for kind, title in (("single", "Single source"), ("mixture", "Mixtures (distractor)")):
        if kind not in res["sets"]:
            continue
        b = res["sets"][kind]
        L.append(f"## {title}: {b['n']} clips\n")
        L += _overall_table(b, labels, "iid")
        L[-1] += "\n"
        for fld, per in b["by"].items():
            L.append(f"### {title}: MAE ms (RMSE ms) [L/R] by {fld}\n")
            L.append(f"| {fld} | n | " + " | ".join(labels) + " | iid L/R |")
            L.append("|---|---|" + "---|" * len(labels) + "---|")
            for v, d in per.items():
                cells = [f"{_fmt(d[lab].get('mae_ms'))} ({_fmt(d[lab].get('rmse_ms'))}) "
                         f"[{_fmt(d[lab].get('lr_acc'), True)}]" for lab in labels]
                L.append(f"| {v} | {d['iid']['n']} | " + " | ".join(cells) +
                         f" | {_fmt(d['iid']['lr_acc'], True)} |")
            L.append("")
        if kind == "single" and "grid_mae_ms" in b:
            for lab in labels:
                g = b["grid_mae_ms"][lab]
                rts = sorted({k.split("|")[0] for k in g}, key=_sort_key)
                snrs = sorted({k.split("|")[1] for k in g}, key=_sort_key, reverse=True)
                L.append(f"### {lab}: MAE ms by nominal RT60 (rows) x SNR dB (columns)\n")
                L.append("| RT60 \\ SNR | " + " | ".join(snrs) + " |")
                L.append("|---|" + "---|" * len(snrs))
                for rt in rts:
                    L.append(f"| {rt} | " + " | ".join(_fmt(g.get(f"{rt}|{s}")) for s in snrs)
                             + " |")
                L.append("")
    return "\n".join(L) + "\n"


def machine_line(m: dict) -> str:
    return (f"{m.get('cpu_model', '?')} ({m.get('cpus', '?')} CPUs, AVX-512 "
            f"{'yes' if m.get('avx512f') else 'no'}), OpenBLAS core "
            f"{m.get('openblas_core') or 'not reported'}"
            f" (OPENBLAS_CORETYPE={m.get('OPENBLAS_CORETYPE') or 'unset'}); python "
            f"{m.get('python')}, numpy {m.get('numpy')}, scipy {m.get('scipy')}, pyroomacoustics "
            f"{m.get('pyroomacoustics')}, torch {m.get('torch')}; tded commit "
            f"{(m.get('git_commit') or '?')[:12]}{' (dirty tree)' if m.get('git_dirty') else ''}")


def _overall_table(b: dict, labels: list, iid_label: str) -> list:
    """Markdown lines: MAE, RMSE, median and L/R per method over one set, then the IID row."""
    L = ["| method | MAE | RMSE | median | L/R |", "|---|---|---|---|---|"]
    for lab in labels:
        m = b["overall"][lab]
        L.append(f"| {lab} | {_fmt(m.get('mae_ms'))} | {_fmt(m.get('rmse_ms'))} | "
                 f"{_fmt(m.get('median_ms'))} | {_fmt(m.get('lr_acc'), True)} |")
    L.append(f"| {iid_label} | – | – | – | {_fmt(b['overall']['iid']['lr_acc'], True)} |")
    return L


def summary(res: dict, meta: dict) -> str:
    """Compact tables for eval/README.md (MAE ms per method; full detail is in results.md)."""
    labels = meta["labels"]
    L = []
    for kind, title in (("single", "Single source"), ("mixture", "Mixtures")):
        b = res["sets"].get(kind)
        if not b:
            continue
        L.append(f"**{title}, {b['n']} clips** (ms; L/R = left/right accuracy)\n")
        L += _overall_table(b, labels, "IID (louder channel)")
        L.append("")
        for fld, name in (("snr_db", "SNR dB"), ("rt60", "nominal RT60 s"),
                          ("distractor_level", "distractor level")):
            if fld not in b["by"]:
                continue
            per = b["by"][fld]
            paper = fld == "distractor_level"
            L.append(f"MAE (ms) by {name}:\n")
            L.append(f"| {name} | n | " + " | ".join(labels) + " | IID L/R |" +
                     (" paper GCC-PHAT mean |" if paper else ""))
            L.append("|---|---|" + "---|" * (len(labels) + 1) + ("---|" if paper else ""))
            for v, d in per.items():
                L.append(f"| {v} | {d['iid']['n']} | " +
                         " | ".join(_fmt(d[lab].get("mae_ms")) for lab in labels) +
                         f" | {_fmt(d['iid']['lr_acc'], True)} |" +
                         (f" {PAPER['mixture_mae_ms'].get(v, '–')} |" if paper else ""))
            L.append("")
    return "\n".join(L) + "\n"


def plots(res: dict, labels: list[str], out_dir: Path) -> list[Path]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    made = []
    specs = [("single", "snr_db", "SNR (dB)", "mae_vs_snr.png",
              "MAE vs SNR (single source, all RT60 pooled)"),
             ("single", "rt60", "nominal RT60 (s)", "mae_vs_rt60.png",
              "MAE vs RT60 (single source, all SNR pooled)"),
             ("mixture", "distractor_level", "distractor RMS / dominant RMS",
              "mae_vs_distractor.png", "MAE vs distractor level (mixtures)")]
    for kind, fld, xlabel, fname, title in specs:
        b = res["sets"].get(kind)
        if not b or fld not in b["by"]:
            continue
        per = b["by"][fld]
        xs = [float(v) for v in per]
        fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
        for lab in labels:
            ys = [per[v][lab].get("mae_ms", np.nan) for v in per]
            ax.plot(xs, ys, marker="o", label=lab)
        if kind == "mixture":
            px = [float(k) for k in PAPER["mixture_mae_ms"]]
            ax.plot(px, list(PAPER["mixture_mae_ms"].values()), "k--", marker="x",
                    label="paper GCC-PHAT (mean)")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("MAE (ms)")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        p = out_dir / fname
        fig.savefig(p)
        plt.close(fig)
        made.append(p)
    return made


# ---------------------------------------------------------------------------- main
def evaluate(data_dir: Path, tded: Path, methods: list[str], posts: list[str], step: int | None,
             batch: int, jobs: int, extra: list[str], require: set[str],
             model: str | None = None, variants: list[tuple[str, list[str]]] = ()) -> tuple:
    """Run every configuration: each method in `methods` (when tded has it) x each post, plus
    `variants` ((label, tded args) pairs, always required). `extra` goes to every call;
    `model` (--model PATH) to the learned method only."""
    truth_path = data_dir / "truth.csv"
    if not truth_path.is_file():
        raise EvalError(f"no truth.csv in {data_dir}")
    truth = gen.read_truth(truth_path)
    if not truth:
        raise EvalError(f"{truth_path} lists no clips")
    clips = {r["file"]: data_dir / r["file"] for r in truth}
    # Read every clip once (IID baseline); an unreadable clip stops everything here.
    iid, audio_s = {}, 0.0
    for name, p in clips.items():
        try:
            iid[name] = iid_side(p)
            audio_s += sf.info(str(p)).frames / RATE
        except Exception as e:
            raise EvalError(f"clip unreadable: {p}: {e}") from e
    # Which methods does this tded have?
    by_room: dict[float, list[Path]] = {}
    for r in truth:
        by_room.setdefault(float(r["mic_distance"]), []).append(clips[r["file"]])
    probe = next(iter(clips.values()))
    def margs(m):
        return (["--model", model] if (model and m == "learned") else []) + list(extra)

    active = []
    for m in methods:
        ok, why = method_available(tded, m, probe, float(truth[0]["mic_distance"]), margs(m))
        if ok:
            active.append(m)
        elif m in require:
            raise EvalError(f"method {m} requested but tded gives no estimate with it: {why}")
        else:
            print(f"note: method {m} skipped (tded analyze --method {m}: {why})", file=sys.stderr)
    if not active and methods:
        raise EvalError("no method produced an estimate on the probe clip")
    estimates, wall = {}, {}
    jobs_list = [(f"{m}-{p}", ["--method", m, "--post", p] + margs(m))
                 for m in active for p in posts]
    jobs_list += [(lab, list(a) + list(extra)) for lab, a in variants]

    def one(cfg):
        label, args = cfg
        est, w = {}, 0.0
        for d, cl in by_room.items():
            got, t = run_tded(tded, args, cl, d, step, batch, label)
            est.update(got)
            w += t
        missing = [c for c in clips if c not in est]
        if missing:
            raise EvalError(f"{label} returned no estimate for {len(missing)} of "
                            f"{len(clips)} clips, e.g. {', '.join(missing[:5])}")
        vals = {}
        for c in clips:
            o = est[c]
            v = o.get("delay_ms")
            if not _finite(v) and _finite(o.get("delay_samples")):
                v = o["delay_samples"] * 1000.0 / RATE
            if not _finite(v):
                raise EvalError(f"{label} gave no finite delay for {c}: {json.dumps(o)}")
            vals[c] = float(v)
        return label, vals, w

    if jobs > 1 and len(jobs_list) > 1:
        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(jobs) as ex:
            results = list(ex.map(one, jobs_list))
    else:
        results = [one(mp) for mp in jobs_list]
    for label, vals, w in results:
        estimates[label] = vals
        wall[label] = w
    return truth, estimates, iid, wall, audio_s


def ensure_live_set(a, live_dir: Path) -> Path:
    """The live set: multi-second single-source clips with the `active` column (generated with
    generate.py --activity when absent: same rooms, sources and seed policy as the eval set)."""
    if (live_dir / "truth.csv").is_file():
        return live_dir
    if a.live_data:
        raise EvalError(f"no truth.csv in {live_dir}")
    gargs = ["--out", str(live_dir), "--size", "full", "--seed", str(a.seed), "--n-single",
             str(a.live_n), "--n-mixture", "0", "--single-samples",
             str(int(round(a.live_seconds * RATE))), "--activity", "--jobs", str(a.jobs)]
    print("generating the live set: generate.py " + " ".join(gargs), file=sys.stderr)
    if gen.main(gargs) != 0:
        raise EvalError("generator failed (live set)")
    return live_dir


def live_block(a, tded: Path, live_dir: Path, live_variants) -> tuple[dict, str]:
    live_dir = ensure_live_set(a, live_dir)
    t0 = time.time()
    try:
        block = live_mod.evaluate_live(live_dir, tded, live_variants, a.jobs)
    except live_mod.EvalLiveError as e:
        raise EvalError(f"live metric: {e}") from e
    block["eval_wall_s"] = time.time() - t0
    block["variants"] = {lab: args for lab, args in live_variants}
    shown = str(live_dir.relative_to(REPO)) if live_dir.is_relative_to(REPO) else str(live_dir)
    return block, shown


def run_live_only(a, tded: Path, live_dir: Path, live_variants, argv) -> int:
    block, shown = live_block(a, tded, live_dir, live_variants)
    block["meta"] = {"command": "python3 eval/run.py " + shlex.join(
        argv if argv is not None else sys.argv[1:]), "date": time.strftime(
        "%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine_facts(tded),
        "tded": str(tded), "live_data": shown}
    out = Path(a.results) if a.results else REPO / "eval" / "out" / "results-live"
    out.mkdir(parents=True, exist_ok=True)
    (out / "live.json").write_text(json.dumps(block, indent=1) + "\n")
    md = [f"# Live metric ({shown})\n", f"- command: `{block['meta']['command']}`",
          f"- date {block['meta']['date']}; machine: {machine_line(block['meta']['machine'])}\n"]
    (out / "live.md").write_text("\n".join(md + live_mod.markdown(block, shown)) + "\n")
    for name in block["labels"]:
        print(f"live {name}: MAE {block['overall'][name].get('mae_ms', float('nan')):.3f} ms "
              f"over {block['overall'][name]['n']} updates")
    print(f"wrote {out / 'live.md'}, {out / 'live.json'}")
    return 0


def describe_sources(truth: list[dict]) -> str:
    counts: dict[str, int] = {}
    for r in truth:
        pref = r["source"].split("/")[-1].split("_")[0]
        counts[f"{r['source_kind']}:{pref}"] = counts.get(f"{r['source_kind']}:{pref}", 0) + 1
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Score tded methods on TDE-Simulation clips.")
    ap.add_argument("--size", choices=sorted(gen.SIZES), default="small")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--data", default=None,
                    help="existing set (DIR with truth.csv); default: eval/out/data-SIZE-sSEED, "
                         "generated when absent")
    ap.add_argument("--regen", action="store_true", help="regenerate the default data dir")
    ap.add_argument("--results", default=None,
                    help="where results.md/.json and PNGs go (default eval/out/results-SIZE)")
    ap.add_argument("--tded", default=None, help="tded binary (else $TDED, .build/release, "
                    ".build/debug)")
    ap.add_argument("--methods", default="auto",
                    help="comma list (gcc-phat, learned); auto = gcc-phat plus learned when "
                         "tded analyze --method learned works")
    ap.add_argument("--posts", default="mean,mode")
    ap.add_argument("--step", type=int, default=None, help="pass --step N to tded")
    ap.add_argument("--batch", type=int, default=400, help="clips per tded call")
    ap.add_argument("--jobs", type=int, default=1, help="tded calls in parallel (and generator "
                    "workers)")
    ap.add_argument("--gen-args", default="", help="extra generator CLI args, e.g. "
                    "'--n-single 8 --n-mixture 40'")
    ap.add_argument("--tded-arg", action="append", default=[],
                    help="extra tded analyze arg for every call (repeat; use --tded-arg=--x)")
    ap.add_argument("--model", default=None, help="--model PATH for the learned method")
    ap.add_argument("--variant", action="append", default=[], metavar="LABEL=ARGS",
                    help="extra configuration, e.g. 'gcc-phat-hann-mean=--method gcc-phat "
                         "--taper hann --post mean' (repeatable)")
    ap.add_argument("--refs", default="all",
                    help="classical references computed in Python on the same clips (rows "
                         "ref-*): comma list of " + ", ".join(classical.REFERENCES) +
                         "; 'all' (default) or 'none'")
    ap.add_argument("--only-variants", action="store_true",
                    help="score only the --variant configurations (no method x post grid)")
    ap.add_argument("--live", action="store_true",
                    help="also the live metric: `tded run --input` on multi-second clips, per "
                         "update, beside a live numpy reference (eval/live.py)")
    ap.add_argument("--live-only", action="store_true",
                    help="run only the live metric; writes live.md and live.json in --results")
    ap.add_argument("--note", default=None, help="a line for the top of results.md")
    ap.add_argument("--live-json", default=None, metavar="PATH",
                    help="put the live block of an earlier --live-only run (its live.json) into "
                         "these results instead of running the live metric again")
    ap.add_argument("--live-data", default=None,
                    help="live set (DIR with truth.csv and an `active` column); default "
                         "eval/out/live-sSEED, generated when absent")
    ap.add_argument("--live-n", type=int, default=4,
                    help="live clips per room x RT60 x SNR cell when generating (default 4: 300)")
    ap.add_argument("--live-seconds", type=float, default=4.0, help="live clip length")
    ap.add_argument("--live-variant", action="append", default=[], metavar="LABEL=ARGS",
                    help="daemon configuration for the live metric (repeatable; default "
                         "'daemon-gcc-phat=' = tded run defaults): ARGS are `tded run` flags, "
                         "and section.key=VALUE tokens written into its TOML config, e.g. "
                         "'daemon-mean=engine.post=\"mean\"'")
    a = ap.parse_args(argv)
    try:
        tded = find_tded(a.tded)
        if a.data:
            data_dir = Path(a.data)
        else:
            data_dir = REPO / "eval" / "out" / f"data-{a.size}-s{a.seed}"
            if a.regen or not (data_dir / "truth.csv").is_file():
                if data_dir.exists():
                    shutil.rmtree(data_dir)
                gargs = ["--out", str(data_dir), "--size", a.size, "--seed", str(a.seed),
                         "--jobs", str(a.jobs)] + a.gen_args.split()
                if gen.main(gargs) != 0:
                    raise EvalError("generator failed")
        if a.refs == "all":
            refs = list(classical.REFERENCES)
        elif a.refs == "none":
            refs = []
        else:
            refs = [r for r in a.refs.split(",") if r]
            bad = [r for r in refs if r not in classical.REFERENCES]
            if bad:
                raise EvalError(f"unknown reference(s) {', '.join(bad)}; known: "
                                f"{', '.join(classical.REFERENCES)}")
        if a.methods == "auto":
            methods, require = ["gcc-phat", "learned"], {"gcc-phat"}
        else:
            methods = [m for m in a.methods.split(",") if m]
            require = set(methods)
        posts = [p for p in a.posts.split(",") if p]
        variants = []
        for v in a.variant:
            lab, args = label_args(v, "--variant")
            variants.append((lab, args.split()))
        if a.live or a.live_only:
            live_variants = []
            for v in (a.live_variant or ["daemon-gcc-phat="]):
                live_variants.append(label_args(v, "--live-variant"))
            live_dir = Path(a.live_data) if a.live_data else \
                REPO / "eval" / "out" / f"live-s{a.seed}"
        if a.live_only:
            return run_live_only(a, tded, live_dir, live_variants, argv)
        if a.live and a.live_json:
            raise EvalError("--live and --live-json exclude each other")
        if a.live_json:  # read first: a wrong path fails before the long offline part
            try:
                live_json_block = json.loads(Path(a.live_json).read_text())
                for key in ("command", "date", "live_data"):
                    live_json_block["meta"][key]
            except (OSError, json.JSONDecodeError, KeyError, TypeError) as e:
                raise EvalError(f"--live-json {a.live_json}: not a live.json of --live-only "
                                f"({e})") from e
        if a.live:  # first: a broken live run fails before the long offline part
            live_res = live_block(a, tded, live_dir, live_variants)
        t0 = time.time()
        if a.only_variants:
            if not variants:
                raise EvalError("--only-variants needs at least one --variant")
            methods, posts = [], []
        truth, est, iid, wall, audio_s = evaluate(data_dir, tded, methods, posts, a.step,
                                                  a.batch, a.jobs, a.tded_arg, require,
                                                  a.model, variants)
        tded_labels = list(est)
        t_ref = time.time()
        ref_est, ref_wall, ref_computed = compute_references(truth, data_dir, refs, a.jobs)
        ref_wall_s = time.time() - t_ref
        est.update(ref_est)
        res = score(truth, est, iid)
        labels = list(est)
        meta = {
            "size": a.size if not a.data else f"data {a.data}", "seed": a.seed,
            "command": "python3 eval/run.py " + shlex.join(argv if argv is not None
                                                           else sys.argv[1:]),
            "tded": str(tded.relative_to(REPO)) if tded.is_relative_to(REPO) else str(tded),
            "labels": labels, "step": a.step, "n_clips": len(truth),
            "n_single": sum(r["kind"] == "single" for r in truth),
            "n_mixture": sum(r["kind"] == "mixture" for r in truth),
            "sources": describe_sources(truth), "tded_wall_s": float(np.mean(list(wall.values()))),
            "tded_wall_s_by_method": wall, "audio_s": audio_s,
            "tded_labels": tded_labels, "reference_labels": list(ref_est),
            "reference_wall_s": ref_wall_s, "reference_clips_computed": ref_computed,
            "machine": machine_facts(tded), "note": a.note,
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "eval_wall_s": time.time() - t0,
        }
        if any(lab.startswith("learned") for lab in labels):
            mp = Path(a.model) if a.model else REPO / "models" / "tded-stream-v1.safetensors"
            if mp.is_file():
                import hashlib
                meta["learned_model"] = {
                    "path": str(mp.relative_to(REPO)) if mp.is_relative_to(REPO) else str(mp),
                    "sha256": hashlib.sha256(mp.read_bytes()).hexdigest(),
                    "bytes": mp.stat().st_size,
                    "mtime": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(mp.stat().st_mtime))}
        res["meta"] = meta
        if a.live:
            res["live"], meta["live_data"] = live_res
        elif a.live_json:
            block = live_json_block
            meta["live_data"] = block["meta"]["live_data"]
            meta["live_command"] = block["meta"]["command"]
            meta["live_date"] = block["meta"]["date"]
            res["live"] = block
        out = Path(a.results) if a.results else REPO / "eval" / "out" / f"results-{a.size}"
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text(json.dumps(res, indent=1, sort_keys=False) + "\n")
        with open(out / "estimates.csv", "w") as f:  # per clip, for digging (not committed)
            f.write("file,kind,room,rt60,snr_db,distractor_level,source_kind,source,truth_ms,iid,"
                    + ",".join(labels) + "\n")
            for r in truth:
                f.write(",".join([r["file"], r["kind"], r["room"], r["rt60"], r["snr_db"],
                                  r["distractor_level"], r["source_kind"], r["source"],
                                  r["delay_ms"], str(iid[r["file"]])] +
                                 [f"{est[lab][r['file']]:.5f}" for lab in labels]) + "\n")
        md = markdown(res, meta)
        sm = summary(res, meta)
        if "live" in res:
            md += "\n".join(live_mod.markdown(res["live"], meta["live_data"],
                                               embedded=bool(a.live_json))) + "\n"
            sm += "\n".join(live_mod.summary(res["live"])) + "\n"
        (out / "results.md").write_text(md)
        (out / "summary.md").write_text(sm)
        pngs = plots(res, labels, out)
        for kind, b in res["sets"].items():
            print(f"{kind} ({b['n']} clips): " + "; ".join(
                f"{lab} MAE {_fmt(b['overall'][lab].get('mae_ms'))} ms RMSE "
                f"{_fmt(b['overall'][lab].get('rmse_ms'))} ms" for lab in labels) +
                f"; iid L/R {_fmt(b['overall']['iid']['lr_acc'], True)}")
        print(f"wrote {out / 'results.md'}, {out / 'results.json'}, "
              f"{', '.join(p.name for p in pngs)}")
        return 0
    except EvalError as e:
        print(f"eval/run.py: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
