"""PCK of a keypoint backend on the real DeepFashion samples, scored against the community annotation.

Usage::

    .venv/bin/python benchmarks/bench_keypoints.py [--backend mediapipe] [--limit N] [--json OUT]

Images: the 116 distinct source/target photos cut out of ``../shared/data/deepfashion/samples``
(each 768x256 panel strip holds ``[source | target | baseline]``; photo ``k`` spans
``x in [256k + 40, 256k + 216)``). Ground truth: ``fasion-annotation-test.csv`` converted from its
256x256 padded frame to the 256x176 photo. The backend runs through the same path as
``glocal prepare-data --keypoints <backend>`` (:func:`glocal_cli.data.backends.make_backend`).

Metrics, over the points the annotation marks visible, on images where the reference size exists:

* ``PCKh@0.5``: the prediction is within 0.5 x the head segment (neck-nose distance) of the truth;
* ``PCKt@0.5``: within 0.5 x the torso size (neck to the hips' midpoint);
* ``recall``: share of annotated points the backend reports at all; ``extra``: points it reports
  that the annotation marks missing; ``no person``: images where it found nobody;
* per-image time (wall clock, single process).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "deepfashion"


def load_samples(data: Path = DATA, limit: int | None = None) -> dict[str, np.ndarray]:
    """``{benchmark name: 256x176 RGB}`` cut out of the sample strips (sorted by name)."""
    from glocal_cli.data.images import load_image

    photos: dict[str, np.ndarray] = {}
    for strip in sorted((data / "samples").glob("*.png")):
        base = strip.name[: -len(".png")]
        cut = base.index(".jpg_") + len(".jpg")
        img = load_image(strip)
        for k, name in enumerate((base[:cut], base[cut + 1 :])):
            photos.setdefault(name, np.ascontiguousarray(img[:, 256 * k + 40 : 256 * k + 216]))
    names = sorted(photos)[:limit] if limit else sorted(photos)
    return {n: photos[n] for n in names}


def ground_truth(data: Path = DATA) -> dict:
    """Community annotation converted to the 256x176 photo frame."""
    from glocal_cli.data.keypoints import read_keypoint_csv

    return read_keypoint_csv(data / "fasion-annotation-test.csv", frame="deepfashion-256x256", to_frame="deepfashion-256x176")


def score(preds: dict, truth: dict, alpha: float = 0.5) -> dict[str, float]:
    """PCKh / PCKt at ``alpha``, recall, extra points (see the module docstring)."""
    from glocal_cli.data.keypoints import KEYPOINT_NAMES

    neck, nose = KEYPOINT_NAMES.index("neck"), KEYPOINT_NAMES.index("nose")
    rh, lh = KEYPOINT_NAMES.index("r_hip"), KEYPOINT_NAMES.index("l_hip")
    hits = {"h": 0, "t": 0}
    totals = {"h": 0, "t": 0}
    annotated = reported = extra = no_person = 0
    for name, gt in truth.items():
        if name not in preds:
            continue
        pred = preds[name]
        if pred is None:
            no_person += 1
        vis = gt.visible
        pv = pred.visible if pred is not None else np.zeros_like(vis)
        annotated += int(vis.sum())
        reported += int((vis & pv).sum())
        extra += int((~vis & pv).sum())
        refs = {}
        if vis[neck] and vis[nose]:
            refs["h"] = float(np.linalg.norm(gt.xy[neck] - gt.xy[nose]))
        if vis[neck] and vis[rh] and vis[lh]:
            refs["t"] = float(np.linalg.norm(gt.xy[neck] - (gt.xy[rh] + gt.xy[lh]) / 2))
        for key, size in refs.items():
            for j in np.flatnonzero(vis):
                totals[key] += 1
                if pv[j] and np.linalg.norm(pred.xy[j] - gt.xy[j]) <= alpha * size:
                    hits[key] += 1
    return {
        f"PCKh@{alpha}": hits["h"] / max(1, totals["h"]),
        f"PCKt@{alpha}": hits["t"] / max(1, totals["t"]),
        "recall": reported / max(1, annotated),
        "extra": float(extra),
        "no person": float(no_person),
        "points (head-scored)": float(totals["h"]),
        "points (torso-scored)": float(totals["t"]),
    }


def run(backend_name: str = "mediapipe", limit: int | None = None) -> dict[str, float]:
    """Detect on the samples with ``backend_name`` and score; adds ``images`` and ``s/image``."""
    from glocal_cli.data.backends import make_backend

    photos = load_samples(limit=limit)
    truth = {n: p for n, p in ground_truth().items() if n in photos}
    with make_backend(backend_name) as backend:
        t0 = time.perf_counter()
        preds = dict(zip(photos, backend.detect_batch(list(photos.values()), list(photos))))
        elapsed = time.perf_counter() - t0
    result = score(preds, truth)
    result["images"] = float(len(photos))
    result["s/image"] = elapsed / max(1, len(photos))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="mediapipe", help="mediapipe (default) or auto")
    parser.add_argument("--limit", type=int, default=None, help="only the first N photos")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = parser.parse_args(argv)
    if not (DATA / "samples").is_dir():
        print(f"DeepFashion samples not found at {DATA}", file=sys.stderr)
        return 2
    result = run(args.backend, args.limit)
    print(f"backend: {args.backend}")
    for key, value in result.items():
        print(f"{key:>24}: {value:.3f}" if value < 10 else f"{key:>24}: {value:.0f}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
