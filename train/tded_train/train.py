"""Self-supervised training of the streaming encoder.

    cd train
    python3 -m tded_train.train --out runs/v1 --objective stereocrw --aug all \
        --music ../data/music --sim ../data/sim/bank.npz --sim-weight 0.5 \
        --batch 32 --epochs 12 --epoch-steps 200 --lr 1e-3 --seed 0

Progress lines (loss, examples/s, ETA) go to stdout; every epoch the validation score (delay MAE
on the held-out simulated clips, learned next to GCC-PHAT) is computed, ``last.pt`` and (when
the score improves) ``best.pt`` + ``best.safetensors`` are written under --out, and the history
is appended to ``history.json``.  ``--resume`` continues from ``last.pt`` bit-for-bit in data
order (sampler and torch RNG states are checkpointed).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from .augment import AugConfig
from .data import CropSampler, MixedSampler, load_sim_bank, load_stereo_folder
from .export import export_model, import_model
from .model import EncoderConfig, StreamEncoder, pooled_layers, small_layers, v1_layers
from .objectives import OBJECTIVES, compute_loss
from .val import DEFAULT_CLIPS, evaluate_gcc, evaluate_model, load_clips

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = 1216  # 49 windows of 1024 at stride 4


def make_config(a) -> EncoderConfig:
    layers = {"v1": lambda: v1_layers(a.width, a.emb), "pooled": pooled_layers,
              "small": small_layers}[a.arch]()
    return EncoderConfig(layers=layers, phat_beta=a.phat_beta, column_norm=not a.no_column_norm,
                         batchnorm=a.batchnorm, tau=a.tau)


def git_commit() -> str:
    try:
        return subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True).stdout.strip()
    except Exception:
        return "unknown"


def load_checkpoint_model(path):
    ck = torch.load(path, map_location="cpu", weights_only=False)
    cfg = EncoderConfig.from_dict(ck["config"])
    model = StreamEncoder(cfg)
    model.load_state_dict(ck["model"])
    model.eval()
    return model, {"objective": ck["args"]["objective"], "provenance": ck.get("provenance", {})}


def build_sampler(a):
    samplers, weights = [], []
    if a.music:
        tracks = []
        for d in a.music:
            tracks += load_stereo_folder(d)
        if tracks:
            samplers.append(CropSampler(tracks, EXAMPLE, seed=a.seed + 1))
            weights.append(1.0 - a.sim_weight if a.sim else 1.0)
    if a.sim and Path(a.sim).exists() and a.sim_weight > 0:
        samplers.append(CropSampler(load_sim_bank(a.sim), EXAMPLE, seed=a.seed + 2))
        weights.append(a.sim_weight if samplers[:-1] else 1.0)
    assert samplers, "no training data: give --music and/or --sim"
    return MixedSampler(samplers, weights, seed=a.seed)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--out", default="runs/v1")
    ap.add_argument("--objective", choices=OBJECTIVES, default="stereocrw")
    ap.add_argument("--aug", default="all", help="'all', 'none' or a list: swap,mix,gain,reverb,noise")
    ap.add_argument("--music", nargs="*", default=[str(REPO / "data" / "music")],
                    help="folders of unlabeled stereo recordings")
    ap.add_argument("--sim", default=str(REPO / "data" / "sim" / "bank.npz"),
                    help="simulated bank from tded_train.sim ('' = none)")
    ap.add_argument("--sim-weight", type=float, default=0.5)
    ap.add_argument("--arch", choices=["v1", "pooled", "small"], default="v1")
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--emb", type=int, default=128)
    ap.add_argument("--phat-beta", type=float, default=0.5)
    ap.add_argument("--no-column-norm", action="store_true")
    ap.add_argument("--batchnorm", action="store_true")
    ap.add_argument("--tau", type=float, default=0.05)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--epoch-steps", type=int, default=200)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--wd", type=float, default=0.01)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--val-clips", default=str(DEFAULT_CLIPS))
    ap.add_argument("--log-every", type=int, default=20)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--init", default="", metavar="MODEL.safetensors",
                    help="fine-tune: start from an exported model's weights; its layers, phat_beta, "
                         "column_norm and tau replace --arch/--width/--emb/--phat-beta/"
                         "--no-column-norm/--tau (BatchNorm is already folded into it)")
    ap.add_argument("--stop-after", type=int, default=0, help="stop at this step (for tests)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    a = ap.parse_args(argv)

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    np.random.seed(a.seed)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    dev = torch.device(a.device)

    if a.init:
        model, _ = import_model(a.init)
        model = model.to(dev)
        cfg = model.cfg
    else:
        cfg = make_config(a)
        model = StreamEncoder(cfg).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=a.wd)
    total = a.epochs * a.epoch_steps
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / a.warmup) * 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    aug = AugConfig.parse(a.aug)
    sampler = build_sampler(a)
    g = torch.Generator().manual_seed(a.seed)
    clips = load_clips(a.val_clips) if a.val_clips and Path(a.val_clips).exists() else None
    gcc = evaluate_gcc(clips) if clips else None
    history, step, best = [], 0, float("inf")
    provenance = {"commit": git_commit(), "objective": a.objective, "aug": aug.enabled(),
                  "music": [str(Path(m).name) for m in a.music], "sim": Path(a.sim).name if a.sim else "",
                  "sim_weight": a.sim_weight, "batch": a.batch, "lr": a.lr, "seed": a.seed,
                  "example_samples": EXAMPLE, "init": Path(a.init).name if a.init else "", "command": "python3 -m tded_train.train " + " ".join(argv or sys.argv[1:])}

    if a.resume and (out / "last.pt").exists():
        ck = torch.load(out / "last.pt", map_location="cpu", weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        sched.load_state_dict(ck["sched"])
        sampler.set_state(ck["sampler"])
        g.set_state(ck["gen"])
        torch.set_rng_state(ck["torch_rng"])
        step, best, history = ck["step"], ck["best"], ck["history"]
        print(f"resumed from {out / 'last.pt'} at step {step}", flush=True)

    print(f"model: R={cfg.R} M={cfg.M} D={cfg.embedding_dim} MACs/column={cfg.macs_per_column():,} "
          f"params={sum(p.numel() for p in model.parameters()):,}; objective={a.objective} "
          f"aug={aug.enabled()}; steps={total} batch={a.batch}", flush=True)
    if gcc:
        print(f"val reference GCC-PHAT (same clips): MAE {gcc['mae_mean_ms']:.4f} ms (mean), "
              f"{gcc['mae_mode_ms']:.4f} ms (mode)", flush=True)

    def save(path, extra=None):
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(),
                    "sched": sched.state_dict(), "sampler": sampler.state(),
                    "gen": g.get_state(), "torch_rng": torch.get_rng_state(), "step": step,
                    "best": best, "history": history, "config": cfg.to_dict(), "args": vars(a),
                    "provenance": provenance, **(extra or {})}, path)

    t0, seen, run_loss = time.time(), 0, []
    while step < total:
        model.train()
        x = sampler.batch(a.batch)
        loss = compute_loss(model, x[:, 0].to(dev), x[:, 1].to(dev), a.objective, aug, g)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        sched.step()
        step += 1
        seen += a.batch
        run_loss.append(loss.item())
        if step % a.log_every == 0:
            el = time.time() - t0
            eps = seen / el
            eta = (total - step) * a.batch / eps
            print(f"step {step}/{total} epoch {(step - 1) // a.epoch_steps + 1} "
                  f"loss {np.mean(run_loss[-a.log_every:]):.4f} lr {sched.get_last_lr()[0]:.2e} "
                  f"{eps:.1f} ex/s ETA {eta / 60:.1f} min", flush=True)
        if step % a.epoch_steps == 0 or step == total:
            ep = {"epoch": (step - 1) // a.epoch_steps + 1, "step": step,
                  "loss": float(np.mean(run_loss[-a.epoch_steps:])), "time_s": time.time() - t0}
            if clips:
                ep.update({f"val_{k}": v for k, v in evaluate_model(model, clips).items()})
                ep["gcc_mae_mean_ms"] = gcc["mae_mean_ms"]
            history.append(ep)
            score = ep.get("val_mae_mean_ms", -ep["step"])
            print("epoch " + json.dumps(ep), flush=True)
            if score < best:
                best = score
                save(out / "best.pt")
                export_model(model.cpu().eval(), out / "best.safetensors", objective=a.objective,
                             training={**provenance, "step": step, "val": ep}, sidecar=True)
                model.to(dev)
                print(f"  new best val MAE {best:.4f} ms -> {out / 'best.safetensors'}", flush=True)
            save(out / "last.pt")
            (out / "history.json").write_text(json.dumps(history, indent=1))
        if a.stop_after and step >= a.stop_after:
            break
    print("done", flush=True)


if __name__ == "__main__":
    main()
