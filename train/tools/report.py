"""Training curve of a run: markdown table on stdout and a PNG.

    cd train && python3 tools/report.py runs/v1 --png curve-v1.png
"""
import argparse
import json
from pathlib import Path

ap = argparse.ArgumentParser()
ap.add_argument("run")
ap.add_argument("--png", default="")
a = ap.parse_args()
h = json.loads((Path(a.run) / "history.json").read_text())
print("| epoch | step | train loss | val MAE mean (ms) | val MAE mode (ms) | val RMSE (ms) | GCC-PHAT MAE mean (ms) |")
print("|---|---|---|---|---|---|---|")
for e in h:
    print(f"| {e['epoch']} | {e['step']} | {e['loss']:.3f} | {e['val_mae_mean_ms']:.4f} | "
          f"{e['val_mae_mode_ms']:.4f} | {e['val_rmse_mean_ms']:.4f} | {e['gcc_mae_mean_ms']:.4f} |")
if a.png:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.2))
    st = [e["step"] for e in h]
    ax[0].plot(st, [e["loss"] for e in h], "o-")
    ax[0].set_xlabel("step")
    ax[0].set_ylabel("StereoCRW loss (epoch mean)")
    ax[1].plot(st, [e["val_mae_mean_ms"] for e in h], "o-", label="learned (mean)")
    ax[1].axhline(h[0]["gcc_mae_mean_ms"], color="r", ls="--", label="GCC-PHAT (mean)")
    ax[1].set_xlabel("step")
    ax[1].set_ylabel("val delay MAE (ms)")
    ax[1].legend()
    fig.tight_layout()
    fig.savefig(a.png, dpi=80)
