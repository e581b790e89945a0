"""Training of the streaming encoder: self-supervised (the paper's objectives, on unlabeled
stereo), supervised (simulated rooms from an RIR bank, labels free), or both (semi-supervised).

    cd train
    python3 -m tded_train.train --out runs/v1 --objective stereocrw --aug all \
        --music ../data/music --sim ../data/sim/bank.npz --sim-weight 0.5 \
        --batch 32 --epochs 12 --epoch-steps 200 --lr 1e-3 --seed 0

Progress lines (loss, examples/s, ETA) go to stdout; every epoch the validation score (delay MAE
on the held-out simulated clips, learned next to GCC-PHAT) is computed, ``last.pt`` and (when
the score improves) ``best.pt`` + ``best.safetensors`` are written under --out, and the history
is appended to ``history.json``.  ``--resume`` continues from ``last.pt`` bit-for-bit in data
order (sampler and torch RNG states are checkpointed).

Loss = w_ssl * (--objective on --music/--sim crops) + w_sup * per-window CE + w_span * span CE
+ w_reg * expectation Huber (tded_train/supervised.py, on --sup-bank renderings); a weight of 0
skips that part, so the ablation is one flag each:

    SSL only:        --w-ssl 1 --w-sup 0 --w-span 0     (the default; no bank needed)
    supervised only: --w-ssl 0 --w-sup 1 --w-span 1 --sup-bank ... (no unlabeled data needed)
    both:            --w-ssl 1 --w-sup 1 --w-span 1 --sup-bank ...

Distributed (DistributedDataParallel; gloo on CPU, nccl on CUDA), same flags:

    torchrun --nproc_per_node 2 -m tded_train.train ...

Each rank draws its own data (seeds offset by rank), gradients are averaged, rank 0 validates
and writes the checkpoints (which hold every rank's sampler/RNG states).
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

import torch.distributed as dist
import torch.nn as nn

from .augment import AugConfig
from .checkpoint import load_checkpoint, objective_label
from .data import CropSampler, MixedSampler, load_sim_bank, load_stereo_folder
from .export import export_model, import_model
from .model import EncoderConfig, StreamEncoder, pooled_layers, small_layers, v1_layers
from .objectives import OBJECTIVES, compute_loss
from .pools import Pool
from .rirbank import load_bank
from .supervised import SupConfig, SupSampler, band_logits, example_length, supervised_losses
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


def build_sampler(a, rank: int = 0):
    s = a.seed + 1000 * rank
    samplers, weights = [], []
    if a.music:
        tracks = []
        for d in a.music:
            tracks += load_stereo_folder(d, verbose=rank == 0)
        if tracks:
            samplers.append(CropSampler(tracks, EXAMPLE, seed=s + 1))
            weights.append(1.0 - a.sim_weight if a.sim else 1.0)
    if a.sim and Path(a.sim).exists() and a.sim_weight > 0:
        samplers.append(CropSampler(load_sim_bank(a.sim), EXAMPLE, seed=s + 2))
        weights.append(a.sim_weight if samplers[:-1] else 1.0)
    assert samplers, "no training data: give --music and/or --sim"
    return MixedSampler(samplers, weights, seed=s)


def build_sup_sampler(a, rank: int = 0):
    assert a.sup_bank, "the supervised losses need --sup-bank (tded_train.rirbank)"
    cfg = SupConfig(K=a.span_windows, p_mix=a.p_mix, snr_range=tuple(a.snr))
    return SupSampler(load_bank(a.sup_bank), [Pool.load(p) for p in a.sup_speech],
                      [Pool.load(p) for p in a.sup_music],
                      Pool.load(a.sup_noise) if a.sup_noise else None, cfg,
                      seed=a.seed + 1000 * rank + 3)


class Objective(nn.Module):
    """The whole training loss as one module, so DistributedDataParallel sees a forward()."""

    def __init__(self, model, a, aug):
        super().__init__()
        self.model, self.a, self.aug = model, a, aug

    def forward(self, ssl_x, sup_x, sup_d, g):
        a, parts, total = self.a, {}, 0.0
        if ssl_x is not None:
            parts["ssl"] = compute_loss(self.model, ssl_x[:, 0], ssl_x[:, 1], a.objective, self.aug, g)
            total = total + a.w_ssl * parts["ssl"]
        if sup_x is not None:
            lg = band_logits(self.model, sup_x[:, 0], sup_x[:, 1], a.span_windows)
            sl = supervised_losses(lg, sup_d, a.span_pool)
            for k, w in (("sup", a.w_sup), ("span", a.w_span), ("reg", a.w_reg)):
                parts[k] = sl[k]
                if w:
                    total = total + w * sl[k]
        return total, parts


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
    g2 = ap.add_argument_group("semi-supervised (tded_train/supervised.py)")
    g2.add_argument("--w-ssl", type=float, default=1.0, help="self-supervised weight (0 = off)")
    g2.add_argument("--w-sup", type=float, default=0.0, help="per-window CE weight")
    g2.add_argument("--w-span", type=float, default=0.0, help="span-pooled CE weight")
    g2.add_argument("--w-reg", type=float, default=0.0, help="expectation Huber weight")
    g2.add_argument("--span-pool", choices=["prob", "logp"], default="prob")
    g2.add_argument("--span-windows", type=int, default=100,
                    help="left windows (stride 8) per supervised example: span 8*(K-1)+1 samples")
    g2.add_argument("--sup-batch", type=int, default=8)
    g2.add_argument("--sup-bank", default="", help="RIR bank .npz (tded_train.rirbank)")
    g2.add_argument("--sup-speech", nargs="*", default=[], help="speech pools .npz (tded_train.pools)")
    g2.add_argument("--sup-music", nargs="*", default=[], help="music pools .npz")
    g2.add_argument("--sup-noise", default="", help="recorded-noise pool .npz ('' = synthetic only)")
    g2.add_argument("--p-mix", type=float, default=0.3)
    g2.add_argument("--snr", type=float, nargs=2, default=[-10.0, 30.0])
    g2.add_argument("--ckpt-every", type=int, default=0,
                    help="also write last.pt every N steps (0 = only at epoch ends)")
    g2.add_argument("--publish", default="",
                    help="copy last.pt here after each save (the small resume checkpoint)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    a = ap.parse_args(argv)

    torch.set_num_threads(a.threads)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if a.device.startswith("cuda") else "gloo")
    if world > 1 and a.device.startswith("cuda"):
        a.device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    main0 = rank == 0
    torch.manual_seed(a.seed)
    np.random.seed(a.seed)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    dev = torch.device(a.device)
    use_ssl = a.w_ssl > 0
    use_sup = (a.w_sup > 0 or a.w_span > 0 or a.w_reg > 0)
    assert use_ssl or use_sup, "all loss weights are 0"

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
    sampler = build_sampler(a, rank) if use_ssl else None
    sup = build_sup_sampler(a, rank) if use_sup else None
    g = torch.Generator().manual_seed(a.seed + rank)
    torch.manual_seed(a.seed + rank)
    objective = Objective(model, a, aug)
    if world > 1:
        # the initial weights are rank 0's (DDP broadcasts them)
        objective = nn.parallel.DistributedDataParallel(objective)
    clips = (load_clips(a.val_clips) if main0 and a.val_clips and Path(a.val_clips).exists()
             else None)
    gcc = evaluate_gcc(clips) if clips else None
    history, step, best = [], 0, float("inf")
    provenance = {"commit": git_commit(), "objective": a.objective, "aug": aug.enabled(),
                  "music": [str(Path(m).name) for m in a.music], "sim": Path(a.sim).name if a.sim else "",
                  "sim_weight": a.sim_weight, "batch": a.batch, "lr": a.lr, "seed": a.seed,
                  "example_samples": EXAMPLE, "init": Path(a.init).name if a.init else "", "command": "python3 -m tded_train.train " + " ".join(argv or sys.argv[1:]),
                  "weights": {"ssl": a.w_ssl, "sup": a.w_sup, "span": a.w_span, "reg": a.w_reg},
                  "sup_bank": Path(a.sup_bank).name if a.sup_bank else "",
                  "sup_pools": [Path(p).name for p in a.sup_speech + a.sup_music + [a.sup_noise] if p],
                  "span_windows": a.span_windows, "sup_batch": a.sup_batch, "world_size": world}

    def rank_state():
        return {"sampler": sampler.state() if sampler else None,
                "sup": sup.state() if sup else None, "gen": g.get_state(),
                "torch_rng": torch.get_rng_state()}

    def set_rank_state(st):
        if sampler:
            sampler.set_state(st["sampler"])
        if sup:
            sup.set_state(st["sup"])
        g.set_state(st["gen"])
        torch.set_rng_state(st["torch_rng"])

    if a.resume and (out / "last.pt").exists():
        ck = load_checkpoint(out / "last.pt")
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        sched.load_state_dict(ck["sched"])
        states = ck.get("rank_states") or [{"sampler": ck["sampler"], "sup": ck.get("sup"),
                                            "gen": ck["gen"], "torch_rng": ck["torch_rng"]}]
        if len(states) == world:
            set_rank_state(states[rank])
        else:  # another world size: same weights/optimizer, fresh data streams per rank
            print(f"note: checkpoint has {len(states)} rank state(s), running {world}: data "
                  f"streams restart from step {ck['step']}'s seeds", flush=True)
            for s_ in (sampler, sup):
                if s_ is not None:
                    s_.rng = np.random.default_rng(a.seed + 1000 * rank + ck["step"])
        step, best, history = ck["step"], ck["best"], ck["history"]
        if main0:
            print(f"resumed from {out / 'last.pt'} at step {step}", flush=True)

    if main0:
        print(f"model: R={cfg.R} M={cfg.M} D={cfg.embedding_dim} MACs/column={cfg.macs_per_column():,} "
              f"params={sum(p.numel() for p in model.parameters()):,}; objective={a.objective} "
              f"aug={aug.enabled()}; steps={total} batch={a.batch}; weights {provenance['weights']}"
              f" sup_batch={a.sup_batch} span={a.span_windows} windows; world={world}", flush=True)
    if gcc:
        print(f"val reference GCC-PHAT (same clips): MAE {gcc['mae_mean_ms']:.4f} ms (mean), "
              f"{gcc['mae_mode_ms']:.4f} ms (mode)", flush=True)

    def gather_states():
        st = rank_state()
        if world == 1:
            return [st]
        allst = [None] * world
        dist.all_gather_object(allst, st)
        return allst

    def save(path, states, extra=None):
        r0 = states[0]
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(),
                    "sched": sched.state_dict(), "sampler": r0["sampler"], "sup": r0["sup"],
                    "gen": r0["gen"], "torch_rng": r0["torch_rng"], "rank_states": states,
                    "step": step, "best": best, "history": history, "config": cfg.to_dict(),
                    "args": vars(a), "provenance": provenance, **(extra or {})}, path)

    def save_last(states):
        save(out / "last.pt", states)
        if a.publish:
            Path(a.publish).mkdir(parents=True, exist_ok=True)
            tmp = Path(a.publish) / "last.pt.tmp"
            tmp.write_bytes((out / "last.pt").read_bytes())
            tmp.replace(Path(a.publish) / "last.pt")

    t0, seen, run_loss, run_parts, step0 = time.time(), 0, [], [], step
    while step < total:
        model.train()
        ssl_x = sampler.batch(a.batch).to(dev) if sampler else None
        sup_x, sup_d = sup.batch(a.sup_batch) if sup else (None, None)
        if sup_x is not None:
            sup_x, sup_d = sup_x.to(dev), sup_d.to(dev)
        loss, parts = objective(ssl_x, sup_x, sup_d, g)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        sched.step()
        step += 1
        seen += (a.batch if sampler else 0) + (a.sup_batch if sup else 0)
        run_loss.append(loss.item())
        run_parts.append({k: v.item() for k, v in parts.items()})
        if main0 and step % a.log_every == 0:
            el = time.time() - t0
            eps = seen / el
            sps = (step - step0) / el
            eta = (total - step) / max(sps, 1e-9)
            pm = {k: np.mean([p[k] for p in run_parts[-a.log_every:]]) for k in run_parts[-1]}
            print(f"step {step}/{total} epoch {(step - 1) // a.epoch_steps + 1} "
                  f"loss {np.mean(run_loss[-a.log_every:]):.4f} "
                  + " ".join(f"{k} {v:.3f}" for k, v in pm.items()) +
                  f" lr {sched.get_last_lr()[0]:.2e} {eps * world:.1f} ex/s {sps * 60:.1f} "
                  f"steps/min ETA {eta / 60:.1f} min", flush=True)
        if a.ckpt_every and step % a.ckpt_every == 0 and step % a.epoch_steps != 0:
            states = gather_states()
            if main0:
                save_last(states)
        if step % a.epoch_steps == 0 or step == total:
            states = gather_states()
            ep = {"epoch": (step - 1) // a.epoch_steps + 1, "step": step,
                  "loss": float(np.mean(run_loss[-a.epoch_steps:])), "time_s": time.time() - t0}
            for k in run_parts[-1]:
                ep[f"loss_{k}"] = float(np.mean([p[k] for p in run_parts[-a.epoch_steps:]]))
            if clips:
                ep.update({f"val_{k}": v for k, v in evaluate_model(model, clips).items()})
                ep["gcc_mae_mean_ms"] = gcc["mae_mean_ms"]
            history.append(ep)
            score = ep.get("val_mae_mean_ms", -ep["step"])
            if main0:
                print("epoch " + json.dumps(ep), flush=True)
            if score < best:
                best = score
                if main0:
                    save(out / "best.pt", states)
                    export_model(model.cpu().eval(), out / "best.safetensors",
                                 objective=objective_label(vars(a)),
                                 training={**provenance, "step": step, "val": ep}, sidecar=True)
                    model.to(dev)
                    print(f"  new best val MAE {best:.4f} ms -> {out / 'best.safetensors'}", flush=True)
            if main0:
                save_last(states)
                (out / "history.json").write_text(json.dumps(history, indent=1))
        if a.stop_after and step >= a.stop_after:
            break
    if world > 1:
        dist.barrier()
    if main0:
        print("done", flush=True)


if __name__ == "__main__":
    main()
