"""Body fitting on the real annotated DeepFashion images: RMS keypoint error and time per image.

    python benchmarks/bench_body_fit.py [--images N] [--batch 16] [--model anny] [--threads 2]

Uses the community keypoints (``../shared/data/deepfashion/fasion-annotation-test.csv``) of the
images in the 59 sample pairs (or the first N annotated images with ``--images``), converted to the
176x256 frame. Prints the median / 95th percentile / max RMS over visible keypoints (pixels of the
176x256 frame), the share of fits flagged, and seconds per image at the given batch size.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from glocal_cli.body import load_body_model
from glocal_cli.body.config import BodyFitConfig
from glocal_cli.body.fit import fit_keypoints
from glocal_cli.data.keypoints import read_keypoint_csv
from glocal_cli.paths import shared_data_dir


def sample_names(root) -> list[str]:  # noqa: ANN001
    names: list[str] = []
    for p in sorted((root / "deepfashion" / "samples").glob("*.png")):
        a, b = p.name[:-4].split(".jpg_")
        for n in (a + ".jpg", b):
            if n not in names:
                names.append(n)
    return names


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=0, help="first N annotated images instead of the samples")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--model", default="anny")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-shape", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    root = shared_data_dir()
    if root is None:
        raise SystemExit("../shared/data not found (set GLOCAL_SHARED_DATA)")
    poses = read_keypoint_csv(root / "deepfashion" / "fasion-annotation-test.csv", frame="deepfashion-256x256",
                              to_frame="deepfashion-256x176")
    names = [n for n in poses if poses[n].num_visible >= 6][: args.images] if args.images else sample_names(root)
    names = [n for n in names if n in poses]
    body = load_body_model(args.model)
    cfg = BodyFitConfig(fit_shape=not args.no_shape)
    rms, flagged, reasons = [], 0, []
    t0 = time.perf_counter()
    for start in range(0, len(names), args.batch):
        chunk = names[start:start + args.batch]
        kp = np.stack([poses[n].xy for n in chunk]).astype(np.float32)
        vis = np.stack([poses[n].visible for n in chunk])
        res = fit_keypoints(body, kp, vis, 256, 176, cfg)
        rms += res.rms_px.tolist()
        flagged += int((~res.ok).sum())
        reasons += [r for r in res.reason if r]
    dt = time.perf_counter() - t0
    r = np.array(rms)
    print(f"{len(names)} images, model {args.model}, batch {args.batch}, {args.threads} threads")
    print(f"RMS px (176x256): median {np.median(r):.2f}  p95 {np.percentile(r, 95):.2f}  max {r.max():.2f}")
    print(f"flagged {flagged} ({flagged / len(names):.1%}); {dt / len(names):.3f} s per image")
    for reason in sorted(set(reasons)):
        print(f"  flagged: {reason} x{reasons.count(reason)}")


if __name__ == "__main__":
    main()
