"""Reproduces the pooled-vs-TCN table in train/README.md (about 30 s on 2 cores):
StereoCRW on synthetic delayed noise (right = left delayed by 8 samples, 20 dB independent
noise), width-48 encoders, 300 Adam steps at lr 3e-3, batch 8, seed 0.

    cd train && python3 tools/pooling_ablation.py
"""
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent / "tests")]
import test_tded_objectives as T  # noqa: E402
from tded_train.augment import AugConfig  # noqa: E402
from tded_train.model import EncoderConfig, LayerSpec, StreamEncoder  # noqa: E402
from tded_train.objectives import compute_loss  # noqa: E402


def stack(c, dils, extra=()):
    out = [LayerSpec(256, c, 1, 8, "relu")]
    out += [LayerSpec(c, c, 3, d, "relu") for d in dils]
    out += list(extra)
    return out + [LayerSpec(c, 32, 1, 8, "none")]


CONFIGS = {
    "pooled R48": stack(48, [8, 16]),
    "TCN R640": stack(48, [8, 24, 72, 216]),
    "TCN R768 (v1 shape)": stack(48, [8, 24, 72, 216], [LayerSpec(48, 48, 2, 128, "relu")]),
}

if __name__ == "__main__":
    torch.set_num_threads(2)
    k = 8
    for name, layers in CONFIGS.items():
        torch.manual_seed(0)
        g = torch.Generator().manual_seed(0)
        model = StreamEncoder(EncoderConfig(layers=layers))
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        losses, t = [], time.time()
        for _ in range(300):
            L, R = T.delayed_noise(8, k, g)
            loss = compute_loss(model, L, R, "stereocrw", AugConfig.none(), g)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        gt = torch.Generator().manual_seed(99)
        L, R = T.delayed_noise(8, k, gt)
        p, acc = T.target_stats(model, L, R, torch.full((8,), k // 4))
        print(f"{name}: R={model.cfg.R} M={model.cfg.M} loss first10 {sum(losses[:10]) / 10:.2f} "
              f"last10 {sum(losses[-10:]) / 10:.2f} p(true) {p:.2f} argmax acc {acc:.2f} "
              f"({time.time() - t:.0f} s)")
