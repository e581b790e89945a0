"""Parity fixtures for the Swift engine (docs/encoder-spec.md, "Parity fixtures").

    python3 -m tded_train.fixtures                 # tiny.safetensors + tiny_fixture.safetensors
    python3 -m tded_train.fixtures --model models/tded-stream-v1.safetensors --name shipped
                                                   # shipped_fixture.safetensors only

The fixture input is seeded white noise (left) and the same noise delayed by 5 samples (right:
right[n] = left[n - 5]), N = window + 64.  Embeddings are computed with the literal per-window
reference path (``reference_window_embedding``) in float64 and stored as float32.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from .export import export_model, import_model
from .model import (EncoderConfig, StreamEncoder, band_affinity, band_delay, pooled_layers,
                    reference_window_embedding)

REPO = Path(__file__).resolve().parents[2]
FIXTURE_DIR = REPO / "Tests" / "EngineTests" / "Fixtures"
TINY_SEED = 1234
SIGNAL_SEED = 5
SIGNAL_DELAY = 5


def tiny_model() -> StreamEncoder:
    """Seeded random-init model of the first (pooled, R = 48) architecture; no training."""
    torch.manual_seed(TINY_SEED)
    model = StreamEncoder(EncoderConfig(layers=pooled_layers()))
    model.eval()
    return model


def fixture_signal(cfg: EncoderConfig, delay: int = SIGNAL_DELAY, seed: int = SIGNAL_SEED):
    N = cfg.window + 64
    rng = np.random.default_rng(seed)
    base = np.clip(rng.standard_normal(N + delay) * 0.1, -1, 1).astype(np.float32)
    left = base[delay: delay + N]
    right = base[0:N]  # right[n] = base[n] = left[n - delay]
    return torch.from_numpy(left.copy()), torch.from_numpy(right.copy())


def compute_fixture(model: StreamEncoder, left: torch.Tensor, right: torch.Tensor) -> dict:
    cfg = model.cfg
    layers = [(W.double(), b.double()) for W, b in model.folded_layers()]
    nW = left.shape[0] - cfg.window + 1
    with torch.no_grad():
        eL = torch.stack([reference_window_embedding(cfg, layers, left.double(), s)
                          for s in range(nW)])
        eR = torch.stack([reference_window_embedding(cfg, layers, right.double(), s)
                          for s in range(nW)])
        aff = band_affinity(eL, eR, cfg.tau, cfg.max_delay)
        delay = band_delay(aff, cfg.max_delay)
    f32 = lambda t: t.to(torch.float32).contiguous()
    return {"left": f32(left), "right": f32(right), "emb_left": f32(eL), "emb_right": f32(eR),
            "affinity": f32(aff), "delay": f32(delay)}


def write_fixture(model: StreamEncoder, path) -> dict:
    left, right = fixture_signal(model.cfg)
    fx = compute_fixture(model, left, right)
    save_file(fx, str(path), metadata={"signal": f"white noise seed {SIGNAL_SEED}, "
                                                 f"right[n] = left[n-{SIGNAL_DELAY}]"})
    return fx


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model", help="exported model; default: make the seeded tiny model")
    ap.add_argument("--name", default="tiny")
    ap.add_argument("--outdir", default=str(FIXTURE_DIR))
    a = ap.parse_args(argv)
    out = Path(a.outdir)
    out.mkdir(parents=True, exist_ok=True)
    if a.model:
        model, _ = import_model(a.model)
    else:
        model = tiny_model()
        export_model(model, out / f"{a.name}.safetensors", objective="none",
                     training={"note": f"random init, torch.manual_seed({TINY_SEED}); "
                                       "parity fixture only, not trained"})
        model, _ = import_model(out / f"{a.name}.safetensors")  # exactly what is shipped
    fx = write_fixture(model, out / f"{a.name}_fixture.safetensors")
    d = fx["delay"]
    ok = ~torch.isnan(d)
    print(f"wrote {out / (a.name + '_fixture.safetensors')}: {int(ok.sum())} votes, "
          f"mean delay {d[ok].mean():.3f} (true {SIGNAL_DELAY})")


if __name__ == "__main__":
    main()
