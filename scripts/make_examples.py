"""Regenerate ``examples/``: SynthPeople source photos with sidecars, and target OpenPose files.

    .venv/bin/python scripts/make_examples.py [--out examples] [--seed 0]

Writes ``examples/sources/<stem>.png`` (256x176) with its sidecars ``<stem>.json`` (OpenPose JSON,
the source pose) and ``<stem>_parsing.png`` (8-class label map), and ``examples/poses/pose_NN.json``
(target poses in the same 256x176 canvas). The sidecar convention is described in docs/inference.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from glocal_cli.data.images import save_image
from glocal_cli.data.keypoints import Pose, write_openpose_json
from glocal_cli.data.parsing import write_parsing
from glocal_cli.data.synth.appearance import sample_appearance
from glocal_cli.data.synth.poses import parametric_pose
from glocal_cli.data.synth.render import RenderOptions, render_person

HEIGHT, WIDTH = 256, 176


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "examples")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sources", type=int, default=3)
    parser.add_argument("--poses", type=int, default=4)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    sources, poses = args.out / "sources", args.out / "poses"
    sources.mkdir(parents=True, exist_ok=True)
    poses.mkdir(parents=True, exist_ok=True)
    for i in range(args.sources):
        person = render_person(parametric_pose(rng, HEIGHT, WIDTH), sample_appearance(rng), HEIGHT, WIDTH, rng,
                               RenderOptions(noise=0))
        stem = f"person_{i:02d}"
        save_image(sources / f"{stem}.png", person.image)
        write_openpose_json(sources / f"{stem}.json", person.keypoints)
        write_parsing(sources / f"{stem}_parsing.png", person.parsing)
    for j in range(args.poses):
        sampled = parametric_pose(rng, HEIGHT, WIDTH)
        pose = Pose(sampled.xy.astype(np.float32), np.ones(len(sampled.xy), bool)).clip_to_frame(HEIGHT, WIDTH)
        write_openpose_json(poses / f"pose_{j:02d}.json", pose, canvas=(HEIGHT, WIDTH))  # the frame it is in
    total = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    print(f"wrote {args.sources} sources and {args.poses} poses to {args.out} ({total / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
