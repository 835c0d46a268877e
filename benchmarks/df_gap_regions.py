"""Where the DeepFashion gap is: the clean protocol's SSIM map of the 59 sample pairs split by region of the target.

    python benchmarks/df_gap_regions.py [--weights weights/default] [--threads 2] [--json out.json]

Runs ``GLocalPipeline.transfer_batch`` as ``bench_body_pairs.py`` does (:func:`bench_body_pairs.pairs_pipeline`: the
settings ``--weights`` recommend, the pose files in the photo's pixels), and splits the per-pixel
SSIM (Gaussian sigma 1.5, the 'valid' 11x11 region) of ours, the panels' third column (Deformable GAN), an
all-white picture and the copied source by the target photo's regions:

- *far background*: the target's studio wall (within 18 levels of its border's median colour) more than 10 px from
  anything else;
- *near background*: the rest of the wall (the 10 px around the person: the outline's errors land here);
- *person*: everything else.

Each region's mean SSIM is averaged over the pairs; its share is the share of the image it covers. Also the
whole-image SSIM / PSNR after a Gaussian blur of our results (sigma 0.7-2.5): if blurring raises them, our
pictures carry structure in the wrong place, not too little of it. And the mean absolute Laplacian (sharpness) of
ours, Deformable GAN's and the targets.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from bench_body_pairs import clean_scores, load_samples, pairs_pipeline, shared_root, ssim_map, to_t

from glocal_cli.paths import default_weights_dir

WALL_LEVELS = 18
"""A target pixel within this many grey levels (every channel) of its border's median colour is wall."""
NEAR_PX = 10
"""Wall pixels within this many pixels of a non-wall pixel are *near background*."""


def wall_mask(photo: np.ndarray) -> np.ndarray:
    """``bool (H, W)``: pixels within :data:`WALL_LEVELS` of the photo's 3-pixel border's median colour."""
    edge = np.concatenate([photo[:3].reshape(-1, 3), photo[-3:].reshape(-1, 3), photo[:, :3].reshape(-1, 3),
                           photo[:, -3:].reshape(-1, 3)])
    return np.abs(photo.astype(np.float64) - np.median(edge, 0)).max(-1) < WALL_LEVELS


def region_scores(pictures: list[np.ndarray], targets: list[np.ndarray]) -> dict[str, float]:
    """Mean SSIM per region (far background, near background, person) and over the image."""
    import cv2

    walls = [wall_mask(t) for t in targets]
    far = np.stack([cv2.erode(w.astype(np.uint8), np.ones((2 * NEAR_PX + 1,) * 2, np.uint8)) > 0 for w in walls])
    wall = np.stack(walls)
    regions = {"far_background": far, "near_background": wall & ~far, "person": ~wall}
    smap = ssim_map(to_t(pictures).double(), to_t(targets).double())
    out = {"image": float(smap.mean())}
    for name, mask in regions.items():
        m = torch.from_numpy(mask[:, 5:-5, 5:-5]).double()
        out[name] = float(((smap * m).sum((1, 2)) / m.sum((1, 2)).clamp_min(1)).mean())
        out[f"{name}_share"] = float(m.mean())
    return out


def main() -> None:
    import cv2

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", type=Path, default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    samples = load_samples(shared_root())
    weights = args.weights or default_weights_dir()
    pipe = pairs_pipeline(weights)
    ours = [np.asarray(r) for r in pipe.transfer_batch([s["source"] for s in samples],
                                                       [s["target_pose"] for s in samples],
                                                       [s["source_pose"] for s in samples])]
    targets = [s["target"] for s in samples]
    columns = {"glocal": ours, "deformable_gan": [s["baseline"] for s in samples],
               "all_white": [np.full_like(t, 255) for t in targets], "copy_source": [s["source"] for s in samples]}
    report: dict = {"weights": str(weights), "n": len(samples), "regions": {}, "blurred": {}, "sharpness": {}}
    for name, pics in columns.items():
        report["regions"][name] = r = region_scores(pics, targets)
        print(f"{name:15s} SSIM {r['image']:.4f}: far background {r['far_background']:.4f} "
              f"({r['far_background_share']:.0%}), near background {r['near_background']:.4f} "
              f"({r['near_background_share']:.0%}), person {r['person']:.4f} ({r['person_share']:.0%})")
    for sigma in (0.0, 0.7, 1.0, 1.5, 2.5):
        pics = np.stack([cv2.GaussianBlur(p, (0, 0), sigma) if sigma else p for p in ours])
        s, p = clean_scores(pics, np.stack(targets))
        report["blurred"][str(sigma)] = {"ssim": float(np.mean(s)), "psnr": float(np.mean(p))}
        print(f"glocal blurred, sigma {sigma}: SSIM {np.mean(s):.4f}, PSNR {np.mean(p):.2f} dB")
    for name, pics in (("glocal", ours), ("deformable_gan", columns["deformable_gan"]), ("target", targets)):
        lap = [np.abs(cv2.Laplacian(cv2.cvtColor(p, cv2.COLOR_RGB2GRAY), cv2.CV_32F)).mean() for p in pics]
        report["sharpness"][name] = float(np.mean(lap))
        print(f"mean |Laplacian| {name}: {np.mean(lap):.2f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
