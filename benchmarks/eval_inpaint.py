"""Texture inpainting on real photos: the 59 DeepFashion targets with the shared stroke masks, and held-out
CCP street photos with seeded masks; glocal against classical fills, side by side.

    python benchmarks/eval_inpaint.py [--weights weights/inpaint ...] [--ccp data/ccp-128] [--json out.json]
        [--picture docs/pictures/inpaint_real.png] [--set infer.key=value] [--fill texture --fill semantic]
        [--split val] [--rows 0,2 --rows 0] [--variant LABEL:key=value,key=value ...]

DeepFashion: each sample strip's middle panel (the target photo, 176x256 inside 40 px of padding) with
``../shared/data/deepfashion/inpaint-masks/<target stem>.png`` (white = hole); keypoints from the community CSV.
CCP: the prepared test split of ``prepare-data ccp`` (photos the training never saw) with irregular strokes of
the Liu et al. bins 1-3 (10-40% of the image), seeded by the photo's index; ``--split val`` scores the 45
validation photos alone instead (the ones settings are tuned on; DeepFashion is then skipped).

Each method fills the hole of the whole photo and keeps every known pixel: ``telea`` (``cv2.inpaint``, radius 5,
the reference of ``../shared/data/README.md``), ``mean`` (the known pixels' mean colour), and ``glocal`` per
``--weights`` (``GLocalPipeline.inpaint_batch``, the photo's keypoints given, source parsing estimated, result
at the photo's size, as ``glocal inpaint --mask FILE`` writes it). Scores over the whole image: clean PSNR
(float64 MSE, data range 255) and SSIM (Gaussian window sigma 1.5, data range 255, = skimage); inside the hole:
PSNR over the hole's pixels only. ``--variant strong:inpaint_fill=texture,texture_strength=1`` adds a column per
``--weights`` with those ``infer.*`` settings over the weights' own (and ``--set``'s).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np
import torch

from glocal_cli.data.images import load_image, save_image, stack_rows
from glocal_cli.data.keypoints import read_keypoint_csv
from glocal_cli.data.prefill import telea_fill
from glocal_cli.metrics.psnr import psnr
from glocal_cli.metrics.ssim import SSIMSpec, ssim
from glocal_cli.paths import REPO_DIR, shared_data_dir

CLEAN_SSIM = SSIMSpec(data_range=255.0, sigma=1.5)


def score(results: list[np.ndarray], truths: list[np.ndarray], holes: list[np.ndarray]) -> dict[str, float]:
    """Mean whole-image PSNR and SSIM, and mean PSNR inside the holes."""
    psnr_hole = []
    for r, t, h in zip(results, truths, holes):
        d = (r.astype(np.float64) - t.astype(np.float64)) ** 2
        psnr_hole.append(10 * np.log10(255.0**2 / max(d[h].mean(), 1e-12)))
    g = torch.from_numpy(np.stack(results)).permute(0, 3, 1, 2)
    t = torch.from_numpy(np.stack(truths)).permute(0, 3, 1, 2)
    return {"psnr": float(psnr(g.double(), t.double()).mean()),
            "ssim": float(ssim(g, t, CLEAN_SSIM, precision="float64").mean()),
            "psnr_hole": float(np.mean(psnr_hole)), "n": len(results)}


def mean_fill(photo: np.ndarray, hole: np.ndarray) -> np.ndarray:
    out = photo.copy()
    out[hole] = np.rint(photo[~hole].mean(0)).astype(np.uint8)
    return out


def deepfashion_set(root: Path) -> tuple[list[np.ndarray], list[np.ndarray], list]:
    kp = read_keypoint_csv(root / "deepfashion" / "fasion-annotation-test.csv", frame="deepfashion-256x256",
                           to_frame="deepfashion-256x176")
    photos, holes, poses = [], [], []
    for strip in sorted((root / "deepfashion" / "samples").glob("*.png")):
        target = strip.name[:-4].split(".jpg_")[1]
        mask = root / "deepfashion" / "inpaint-masks" / f"{Path(target).stem}.png"
        if not mask.is_file():
            continue
        img = load_image(strip)
        photos.append(np.ascontiguousarray(img[:, 256 + 40:256 + 216]))
        holes.append(load_image(mask)[..., 0] > 127)
        poses.append(kp.get(target))
    return photos, holes, poses


def ccp_set(data: Path, split: str = "test") -> tuple[list[np.ndarray], list[np.ndarray], list]:
    from glocal_cli.data.layout import PreparedDataset
    from glocal_cli.data.masks import irregular_mask

    ds = PreparedDataset(data)
    kp = ds.keypoints()
    photos, holes, poses = [], [], []
    for i, (name, _) in enumerate(ds.pairs(split)):
        img = load_image(ds.root / "images" / name)
        photos.append(img)
        holes.append(irregular_mask(img.shape[0], img.shape[1], 1 + i % 3, 1000 + i).astype(bool))
        poses.append(kp[name])
    return photos, holes, poses


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", type=Path, action="append", default=[])
    ap.add_argument("--ccp", type=Path, default=REPO_DIR / "data" / "ccp-128")
    ap.add_argument("--split", choices=["test", "val"], default="test",
                    help="CCP split: test (report) or val (tune on it; DeepFashion is then skipped)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--fill", action="append", default=[], choices=["texture", "semantic", "telea"],
                    help="run each --weights with this infer.inpaint_fill (repeatable: one column each)")
    ap.add_argument("--variant", action="append", default=[],
                    help="LABEL:key=value,key=value: one more column per --weights with these infer.* settings")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--picture", type=Path)
    ap.add_argument("--rows", action="append", default=[],
                    help="photo indices of the picture, comma-separated, once per set (default: the first 4)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from glocal_cli.infer.config import resolve_infer_config
    from glocal_cli.infer.pipeline import GLocalPipeline

    root = shared_data_dir()
    if root is None:
        raise SystemExit("../shared/data not found (set GLOCAL_SHARED_DATA)")
    sets = {"deepfashion": deepfashion_set(root)} if args.split == "test" else {}
    if (args.ccp / "manifest.json").is_file():
        sets["ccp" if args.split == "test" else "ccp-val"] = ccp_set(args.ccp, args.split)
    report: dict = {"set": args.set}
    picked = {label: [int(i) for i in rows.split(",")] for label, rows in zip(sets, args.rows)}
    pics = []
    for label, (photos, holes, poses) in sets.items():
        out: dict[str, dict] = {}
        fills = {"telea": [telea_fill(p, h) for p, h in zip(photos, holes)],
                 "mean": [mean_fill(p, h) for p, h in zip(photos, holes)]}
        for w in args.weights:  # the settings the weights recommend, under --set
            icfg = dataclasses.replace(resolve_infer_config(w, None, args.set), workers=0)
            for fill in args.fill or [None]:
                cfg = icfg if fill is None else dataclasses.replace(icfg, inpaint_fill=fill)
                pipe = GLocalPipeline.from_pretrained(w, device="cpu", config=cfg)
                key = str(w) if fill is None else f"{w}:{fill}"
                fills[key] = [np.asarray(r) for r in pipe.inpaint_batch(photos, holes, poses)]
            for spec in args.variant:
                label_v, _, items = spec.partition(":")
                sets_v = args.set + [f"infer.{kv}" for kv in items.split(",") if kv]
                cfg = dataclasses.replace(resolve_infer_config(w, None, sets_v), workers=0)
                pipe = GLocalPipeline.from_pretrained(w, device="cpu", config=cfg)
                fills[f"{w}:{label_v}"] = [np.asarray(r) for r in pipe.inpaint_batch(photos, holes, poses)]
        for name, res in fills.items():
            for r, p, h in zip(res, photos, holes):
                assert np.array_equal(r[~h], p[~h]), f"{name}: a known pixel changed"
            out[name] = score(res, photos, holes)
            print(label, name, json.dumps({k: round(v, 4) for k, v in out[name].items()}), flush=True)
        report[label] = out
        for i in picked.get(label, range(min(4, len(photos)))):
            masked = photos[i].copy()
            masked[holes[i]] = 255
            pics.append(np.concatenate([masked, photos[i], *[fills[k][i] for k in fills if k != "mean"]], 1))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    if args.picture and pics:
        args.picture.parent.mkdir(parents=True, exist_ok=True)
        save_image(args.picture, stack_rows(pics, same_height=True))


if __name__ == "__main__":
    main()
