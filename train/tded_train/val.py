"""Validation score: delay MAE on a small held-out simulated set, learned encoder next to a
GCC-PHAT reference computed here in numpy on the same clips.

The clips come from the evaluation generator (other people's code, not train data):

    python3 eval/generate.py --out data/val_train --size small --n-single 100 --n-mixture 0 \
        --kinds speech --seed 2026

(paper rooms, recorded speech, SNR -10..30 dB, RT60 spread; 1151 samples = 128 step-1 windows).

Learned: per clip, embeddings of all 128 window starts per channel, band affinity |d| <= 24,
softmax at tau, expectation vote for the 80 windows whose band is complete, aggregated by the
mean (and the paper's "mode").  GCC-PHAT (paper's baseline): 128 frames of 1024 samples at step
1, rectangular window, rFFT size 2n, weight G / (|G| + 1e-20), argmax over lags +-24, mean (and
mode) of the per-frame lags.

    python3 -m tded_train.val MODEL.safetensors [--clips ../data/val_train]
"""
from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from .data import RATE, resample

REPO = Path(__file__).resolve().parents[2]
DEFAULT_CLIPS = REPO / "data" / "val_train"


def load_clips(folder=DEFAULT_CLIPS, max_clips: int = 0):
    folder = Path(folder)
    rows = list(csv.DictReader(open(folder / "truth.csv")))
    if max_clips:
        rows = rows[:max_clips]
    xs, truth, snr = [], [], []
    for r in rows:
        x, sr = sf.read(str(folder / r["file"]), dtype="float32", always_2d=True)
        x = resample(x, sr, RATE).T.astype(np.float32)
        xs.append(x)
        truth.append(float(r["delay_samples"]))
        snr.append(float(r["snr_db"]) if r.get("snr_db") not in (None, "") else np.nan)
    n = min(x.shape[1] for x in xs)
    return np.stack([x[:, :n] for x in xs]), np.array(truth), np.array(snr)


def mode_aggregate(votes: np.ndarray, n_cand: int = 1001, tol: float = 0.05) -> float:
    """The paper's RANSAC-like mode of a set of votes."""
    lo, hi = votes.min(), votes.max()
    if hi - lo < 1e-9:
        return float(votes.mean())
    cand = np.linspace(lo, hi, n_cand)
    inl = np.abs(votes[None, :] - cand[:, None]) <= tol
    cnt = inl.sum(1)
    best = np.flatnonzero(cnt == cnt.max())
    c = best[len(best) // 2]
    return float(votes[inl[c]].mean())


def learned_votes(model, x: np.ndarray, batch: int = 8) -> np.ndarray:
    """x [n, 2, N] -> votes [n, V] (expectation over the band, complete bands only)."""
    cfg = model.cfg
    D = cfg.max_delay
    out = []
    model.eval()
    with torch.no_grad():
        for i in range(0, len(x), batch):
            xb = torch.from_numpy(x[i: i + batch])
            B = xb.shape[0]
            e = model.window_embeddings(torch.cat([xb[:, 0], xb[:, 1]]), stride=1)
            eL, eR = e[:B], e[B:]
            W = eL.shape[1]
            A = torch.bmm(eL, eR.transpose(1, 2)) / cfg.tau  # [B, W, W]
            rows = torch.arange(D, W - D)
            d = torch.arange(-D, D + 1)
            band = A[:, rows[:, None], rows[:, None] + d[None, :]]  # [B, V, 2D+1]
            p = torch.softmax(band, dim=-1)
            out.append((p * d.to(p.dtype)).sum(-1).numpy())
    return np.concatenate(out)


def gcc_phat_votes(x: np.ndarray, frame: int = 1024, max_delay: int = 24) -> np.ndarray:
    """x [n, 2, N] -> per-frame argmax lags [n, N - frame + 1] (positive = right later)."""
    n, _, N = x.shape
    F = N - frame + 1
    idx = np.arange(F)[:, None] + np.arange(frame)[None, :]
    out = np.zeros((n, F))
    lags = np.r_[np.arange(0, max_delay + 1), np.arange(-max_delay, 0)]
    for i in range(n):
        L = np.fft.rfft(x[i, 0][idx].astype(np.float64), 2 * frame, axis=1)
        R = np.fft.rfft(x[i, 1][idx].astype(np.float64), 2 * frame, axis=1)
        G = R * np.conj(L)
        cc = np.fft.irfft(G / (np.abs(G) + 1e-20), 2 * frame, axis=1)
        v = np.concatenate([cc[:, : max_delay + 1], cc[:, -max_delay:]], axis=1)
        out[i] = lags[np.argmax(v, axis=1)]
    return out


def summarize(votes: np.ndarray, truth: np.ndarray) -> dict:
    mean = votes.mean(1)
    mode = np.array([mode_aggregate(v) for v in votes])
    ms = 1000.0 / RATE
    return {"mae_mean_ms": float(np.abs(mean - truth).mean() * ms),
            "rmse_mean_ms": float(np.sqrt(((mean - truth) ** 2).mean()) * ms),
            "mae_mode_ms": float(np.abs(mode - truth).mean() * ms),
            "mae_mean_samples": float(np.abs(mean - truth).mean())}


def evaluate_model(model, clips) -> dict:
    x, truth, _ = clips
    return summarize(learned_votes(model, x), truth)


def evaluate_gcc(clips) -> dict:
    x, truth, _ = clips
    return summarize(gcc_phat_votes(x), truth)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("model", nargs="?", help="exported .safetensors (omit: GCC-PHAT only)")
    ap.add_argument("--clips", default=str(DEFAULT_CLIPS))
    a = ap.parse_args(argv)
    torch.set_num_threads(2)
    clips = load_clips(a.clips)
    x, truth, snr = clips
    gv = gcc_phat_votes(x)
    res = {"clips": a.clips, "n": int(len(truth)), "gcc_phat": summarize(gv, truth)}
    lv = None
    if a.model:
        from .export import import_model
        model, _ = import_model(a.model)
        lv = learned_votes(model, x)
        res["learned"] = summarize(lv, truth)
    by = {}
    for s in sorted(set(snr[~np.isnan(snr)].tolist()), reverse=True):
        m = snr == s
        by[f"snr {s:g} dB (n={int(m.sum())})"] = {
            "gcc_phat_mae_mean_ms": summarize(gv[m], truth[m])["mae_mean_ms"],
            **({"learned_mae_mean_ms": summarize(lv[m], truth[m])["mae_mean_ms"]} if lv is not None else {})}
    res["by_snr"] = by
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
