"""Street photos re-posed: a picture grid of CCP photos, each re-posed to three poses with the default weights.

    .venv/bin/python benchmarks/street_grid.py [--photos 10] [--out docs/pictures/ccp_street_grid.jpg]
        [--weights weights/default] [--set infer.KEY=VALUE ...] [--threads 2]

The photos are the first ``--photos`` of the held-out CCP split (``data/ccp-128/test.lst``, prepared by
``glocal prepare-data ccp``; the raw photos from ``../shared/data/ccp/photos``); their keypoints come from the
keypoint backend (mediapipe), as ``glocal transfer --source photo.jpg`` gets them. The target poses are
``examples/poses/pose_0{0,3,5}.json`` read as pose files without a recorded frame (mapped onto the photo's
person by body scale, ``infer.pose_frame: auto``). Each row: the photo, then its three results at the photo's
size (``glocal transfer``'s library path with its defaults). For judging by eye: is the street kept, is the
person the same, is there a ghost or a white wall.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from glocal_cli.config import resolve_config
from glocal_cli.data.images import load_image, resize_image, save_image
from glocal_cli.data.keypoints import read_pose_file
from glocal_cli.errors import GLocalError
from glocal_cli.infer.config import resolve_infer_config
from glocal_cli.infer.pipeline import GLocalPipeline
from glocal_cli.paths import REPO_DIR, default_weights_dir, shared_data_dir

POSES = ("pose_00", "pose_03", "pose_05")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--photos", type=int, default=10)
    ap.add_argument("--out", type=Path, default=REPO_DIR / "docs" / "pictures" / "ccp_street_grid.jpg")
    ap.add_argument("--weights", type=Path, default=default_weights_dir())
    ap.add_argument("--data", type=Path, default=REPO_DIR / "data" / "ccp-128")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--height", type=int, default=192, help="height of each cell of the grid")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    root = shared_data_dir()
    if root is None or not (args.data / "test.lst").is_file():
        raise SystemExit("needs ../shared/data/ccp and data/ccp-128 (glocal prepare-data ccp)")
    names = [n.strip() for n in (args.data / "test.lst").read_text().split() if n.strip()][: args.photos]
    cfg = resolve_config(None, args.set)
    icfg = resolve_infer_config(args.weights, None, args.set)  # the settings the weights recommend, under --set
    pipe = GLocalPipeline.from_pretrained(args.weights, device="cpu", config=icfg, body_config=cfg.body)
    targets = [read_pose_file(REPO_DIR / "examples" / "poses" / f"{p}.json")[0] for p in POSES]
    rows = []
    for name in names:
        photo = load_image(root / "ccp" / "photos" / name.replace("ccp", ""))
        try:
            results = [np.asarray(pipe.transfer(photo, target)) for target in targets]
        except GLocalError as exc:
            print(f"{name}: {exc}")
            continue
        h = args.height
        cells = [resize_image(im, h, max(1, round(im.shape[1] * h / im.shape[0])), "area") for im in [photo, *results]]
        rows.append(np.concatenate(cells, 1))
        print(f"{name}: done")
    width = max(r.shape[1] for r in rows)
    grid = np.concatenate([np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_image(args.out, grid, quality=88)  # street photos: JPEG keeps the docs picture under 0.5 MB
    print(f"{args.out}: {len(rows)} photos x {len(POSES)} poses")


if __name__ == "__main__":
    main()
