"""Training curve of a run: markdown table on stdout and a PNG.

    cd train && python3 tools/report.py runs/v1 --png curve-v1.png
"""
import argparse
import json
from pathlib import Path

ap = argparse.ArgumentParser()
ap.add_argument("run")
ap.add_argument("--png", default="")
ap.add_argument("--ref", type=float, default=0.0, help="a reference MAE (ms) to draw, e.g. v1's")
ap.add_argument("--ref-label", default="v1")
a = ap.parse_args()
h = json.loads((Path(a.run) / "history.json").read_text())
parts = [k[5:] for k in h[0] if k.startswith("loss_")]  # semi-supervised runs: loss parts
print("| epoch | step | train loss | " + "".join(f"{p} | " for p in parts)
      + "val MAE mean (ms) | val MAE mode (ms) | val RMSE (ms) | GCC-PHAT MAE mean (ms) |")
print("|---|---|---|" + "---|" * len(parts) + "---|---|---|---|")
for e in h:
    print(f"| {e['epoch']} | {e['step']} | {e['loss']:.3f} | "
          + "".join(f"{e['loss_' + p]:.3f} | " for p in parts)
          + f"{e['val_mae_mean_ms']:.4f} | "
          f"{e['val_mae_mode_ms']:.4f} | {e['val_rmse_mean_ms']:.4f} | {e['gcc_mae_mean_ms']:.4f} |")
if a.png:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.2))
    st = [e["step"] for e in h]
    ax[0].plot(st, [e["loss"] for e in h], "o-")
    ax[0].set_xlabel("step")
    ax[0].set_ylabel("training loss (epoch mean)")
    ax[1].plot(st, [e["val_mae_mean_ms"] for e in h], "o-", label="learned (mean)")
    ax[1].axhline(h[0]["gcc_mae_mean_ms"], color="r", ls="--", label="GCC-PHAT (mean)")
    if a.ref:
        ax[1].axhline(a.ref, color="g", ls=":", label=a.ref_label)
    ax[1].set_xlabel("step")
    ax[1].set_ylabel("val delay MAE (ms)")
    ax[1].legend()
    fig.tight_layout()
    fig.savefig(a.png, dpi=80)
