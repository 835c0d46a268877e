"""Pose transfer on Market-1501: the 1,000 shared test pairs and the 61 sample panels, community metrics.

    python benchmarks/eval_market.py [--weights weights/market] [--limit N] [--threads 2]
        [--set infer.key=value ...] [--json out.json] [--picture docs/pictures/market_results.png]

``glocal transfer``'s library path (:class:`glocal_cli.infer.pipeline.GLocalPipeline`, its defaults unless
``--set``) on each pair: the source photo (128x64) with its keypoints and the target keypoints from the
community CSVs (128x64 frame, y first), source parsing estimated, result at the photo's size (128x64).

Metrics, against the target photo:
- **SSIM as the community computes it on Market** (PATN/XingGAN/GFLA lineage): skimage SSIM, Gaussian window
  sigma 1.5, ``use_sample_covariance=False``, data range from the generated image, on the 128x64 uint8 images,
  unpadded (``glocal_cli.metrics.ssim`` with ``SSIMSpec(data_range="generated", sigma=1.5)``, equal to skimage);
- **clean float PSNR** (float64 MSE over uint8 values, data range 255).
References in the same run: copying the source photo, and on the sample panels their third column
(Deformable GAN, probably on pairs it trained on). ``--picture``: source | target | result rows.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from glocal_cli.data.images import load_image, save_image, stack_rows
from glocal_cli.data.keypoints import read_keypoint_csv
from glocal_cli.data.layout import read_pairs_csv
from glocal_cli.infer.config import InferConfig
from glocal_cli.metrics.psnr import psnr
from glocal_cli.metrics.ssim import SSIMSpec, ssim
from glocal_cli.paths import REPO_DIR, shared_data_dir

COMMUNITY_SSIM = SSIMSpec(data_range="generated", sigma=1.5)


def scores(generated: list[np.ndarray], reference: list[np.ndarray]) -> dict[str, float]:
    """Mean community SSIM and clean PSNR of two lists of uint8 (H, W, 3) images."""
    g = torch.from_numpy(np.stack(generated)).permute(0, 3, 1, 2)
    r = torch.from_numpy(np.stack(reference)).permute(0, 3, 1, 2)
    return {"ssim": float(ssim(g, r, COMMUNITY_SSIM, precision="float64").mean()),
            "psnr": float(psnr(g.double(), r.double()).mean()), "n": len(generated)}


def sample_panels(root: Path) -> list[tuple[str, str, np.ndarray, np.ndarray, np.ndarray]]:
    """``(source name, target name, source, target, Deformable-GAN)`` of every 192x128 sample strip."""
    out = []
    for strip in sorted((root / "market1501" / "samples").glob("*.png")):
        base = strip.name[: -len(".png")]
        cut = base.index(".jpg_") + len(".jpg")
        img = load_image(strip)
        out.append((base[:cut], base[cut + 1:], img[:, :64], img[:, 64:128], img[:, 128:192]))
    return out


def run(pipe, sources, source_poses, target_poses, batch: int) -> list[np.ndarray]:  # noqa: ANN001
    results: list[np.ndarray] = []
    for start in range(0, len(sources), batch):
        sl = slice(start, start + batch)
        results += [np.asarray(r) for r in pipe.transfer_batch(sources[sl], target_poses[sl], source_poses[sl])]
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", type=Path, default=REPO_DIR / "weights" / "market")
    ap.add_argument("--limit", type=int, default=0, help="first N test pairs only")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--set", action="append", default=[], help="infer.key=value (repeatable)")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--picture", type=Path)
    ap.add_argument("--skip-test", action="store_true", help="only the sample panels")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from glocal_cli.config.io import config_from_dict
    from glocal_cli.infer.pipeline import GLocalPipeline

    root = shared_data_dir()
    if root is None:
        raise SystemExit("../shared/data not found (set GLOCAL_SHARED_DATA)")
    sets = {}
    for item in args.set:
        key, value = item.split("=", 1)
        sets[key.removeprefix("infer.")] = value
    from glocal_cli.infer.config import resolve_infer_config

    icfg = resolve_infer_config(args.weights, None, [f"infer.{k}={v}" for k, v in sets.items()])
    icfg = config_from_dict(InferConfig, {**icfg.__dict__, "workers": 0, "pose_frame": "source",
                                          "batch_size": args.batch})
    pipe = GLocalPipeline.from_pretrained(args.weights, device="cpu", config=icfg)
    report: dict = {"weights": str(args.weights), "set": args.set, "frame": list(pipe.frame_hw)}
    pics: list[np.ndarray] = []

    # the sample panels (identities held out of the shared training split)
    panels = sample_panels(root)
    kp = read_keypoint_csv(root / "market1501" / "market-annotation-samples.csv")
    panels = [p for p in panels if p[0] in kp and p[1] in kp]
    t0 = time.perf_counter()
    res = run(pipe, [p[2] for p in panels], [kp[p[0]] for p in panels], [kp[p[1]] for p in panels], args.batch)
    report["samples"] = {"glocal": scores(res, [p[3] for p in panels]),
                         "deformable_gan": scores([p[4] for p in panels], [p[3] for p in panels]),
                         "copy_source": scores([p[2] for p in panels], [p[3] for p in panels]),
                         "seconds": round(time.perf_counter() - t0, 1)}
    for p, r in list(zip(panels, res))[:12]:
        pics.append(np.concatenate([p[2], p[3], r, p[4]], 1))
    print("samples", json.dumps(report["samples"]), flush=True)

    if not args.skip_test:
        test = root / "market1501" / "test"
        pairs = read_pairs_csv(root / "market1501" / "test" / "market-pairs-test-1000.csv") \
            if (test / "market-pairs-test-1000.csv").is_file() else \
            read_pairs_csv(root / "market1501" / "market-pairs-test-1000.csv")
        if args.limit:
            pairs = pairs[: args.limit]
        kp = read_keypoint_csv(root / "market1501" / "market-annotation-test.csv")
        pairs = [(a, b) for a, b in pairs if a in kp and b in kp]
        cache: dict[str, np.ndarray] = {}

        def photo(n: str) -> np.ndarray:
            if n not in cache:
                cache[n] = load_image(test / n)
            return cache[n]

        t0 = time.perf_counter()
        res = run(pipe, [photo(a) for a, _ in pairs], [kp[a] for a, _ in pairs], [kp[b] for _, b in pairs],
                  args.batch)
        targets = [photo(b) for _, b in pairs]
        report["test"] = {"glocal": scores(res, targets), "copy_source": scores([photo(a) for a, _ in pairs], targets),
                          "seconds": round(time.perf_counter() - t0, 1)}
        for (a, b), r in list(zip(pairs, res))[:12]:
            pics.append(np.concatenate([photo(a), photo(b), r, np.full_like(r, 255)], 1))
        print("test", json.dumps(report["test"]), flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    if args.picture and pics:  # six pairs a row
        args.picture.parent.mkdir(parents=True, exist_ok=True)
        save_image(args.picture, stack_rows([np.concatenate(pics[i:i + 6], 1) for i in range(0, len(pics), 6)]))


if __name__ == "__main__":
    main()
