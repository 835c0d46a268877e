"""Plot the learning curve of one or more training runs (``<run>/validation.jsonl``) to a PNG.

    python scripts/plot_learning_curve.py runs/market-128 [runs/other ...] --stage generator \
        --metrics ssim,psnr --out docs/pictures/market_learning_curve.png [--label cpu --label gpu]

One panel per metric, validation value against optimiser steps (bottom axis) with the wall-clock hours of the
run on a second axis of each curve's points; the step-0 copy-the-source baseline (``baseline_copy_*``) is drawn
as a dashed line where the run logged it. Needs matplotlib (installed with the mediapipe extra).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from glocal_cli.train.logging import read_validation  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--stage", default="generator")
    ap.add_argument("--metrics", default="ssim,psnr")
    ap.add_argument("--label", action="append", default=[])
    ap.add_argument("--title", default="")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [m for m in args.metrics.split(",") if m]
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.6), squeeze=False)
    for i, run in enumerate(args.runs):
        rows = [r for r in read_validation(run / "validation.jsonl") if r.get("stage") == args.stage]
        if not rows:
            print(f"{run}: no {args.stage} validation rows", file=sys.stderr)
            continue
        label = args.label[i] if i < len(args.label) else run.name
        t0 = rows[0]["elapsed_s"]
        for ax, m in zip(axes[0], metrics):
            pts = [(r["step"], r[m], (r["elapsed_s"] - t0) / 3600) for r in rows if m in r]
            if not pts:
                continue
            steps, values, hours = zip(*pts)
            line, = ax.plot(steps, values, marker="o", ms=3, label=f"{label} ({hours[-1]:.1f} h)")
            base = next((r.get(f"baseline_copy_{m}") for r in rows if f"baseline_copy_{m}" in r), None)
            if base is not None:
                ax.axhline(base, ls="--", color=line.get_color(), alpha=0.5, lw=1)
            ax.set_xlabel("optimiser steps")
            ax.set_ylabel(f"validation {m}")
            ax.grid(alpha=0.3)
    for ax in axes[0]:
        ax.legend(fontsize=8)
    if args.title:
        fig.suptitle(args.title, fontsize=10)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
