"""Where a target pose without a recorded frame lands (``pose_frame: auto``'s guess), on the 59 real
DeepFashion sample pairs.

    python benchmarks/bench_pose_mapping.py [--limit N] [--json out.json]

For every pair ``A.jpg_B.jpg.png`` of ``deepfashion/samples``: the source keypoints (``A``) are put in
the photo's 256x176 frame; the target keypoints (``B``) are taken as they are in the CSV (256x256
padded frame, x and y swapped into ``x, y``), i.e. as a pose file that records no frame, and mapped
into the 256x176 frame with :func:`glocal_cli.infer.io.map_target_pose` (``auto``, no recorded frame,
the source pose given) under the former rule (``guess="box"``: its box onto the source person's box)
and the body-scale rule (``guess="body"``, the default). Reported per rule: keypoints that land outside
the frame (total, per pair at most, pairs with any), and the mean / median pixel distance between the
mapped target keypoints (unclipped) and the true target keypoints in the 256x176 frame (the pairs are
same-person photos from the same studio frame, so the true positions are a fair reference), over all
pairs and over the close-up sources (no knee or ankle visible). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from glocal_cli.data.keypoints import Pose, convert_frame, read_keypoint_csv
from glocal_cli.infer.io import guess_target_pose, map_target_pose
from glocal_cli.paths import shared_data_dir

H, W = 256, 176
RULES = (("box onto box (before)", "box"), ("body scale + keep in frame (after)", "body"))


def load_pairs(root: Path, limit: int = 0) -> list[dict]:
    """Every sample pair: the source pose in the 256x176 frame, the target pose raw (256x256 padded
    frame, no recorded frame) and its true position in the 256x176 frame."""
    raw = read_keypoint_csv(root / "deepfashion" / "fasion-annotation-test.csv")
    out = []
    for p in sorted((root / "deepfashion" / "samples").glob("*.png")):
        a, b = p.name[:-4].split(".jpg_")
        a += ".jpg"
        src, tgt = raw[a], raw[b]
        out.append({"name": p.name, "source": convert_frame(src, "deepfashion-256x256", "deepfashion-256x176"),
                    "target": tgt,
                    "truth": convert_frame(tgt, "deepfashion-256x256", "deepfashion-256x176", clip=False)})
    return out[:limit] if limit else out


def closeup(pose: Pose) -> bool:
    """No knee or ankle visible: a close-up (upper body) photo."""
    return not pose.visible[[9, 10, 12, 13]].any()


def measure(pairs: list[dict], rule: str) -> dict:
    outside, dists, close_dists, close_out = [], [], [], []
    for pr in pairs:
        mapped, _ = map_target_pose(pr["target"], "auto", (H, W), source_pose=pr["source"], min_visible=0, guess=rule)
        n_out = int(pr["target"].num_visible - mapped.num_visible)
        free = guess_target_pose(pr["target"], pr["source"], (H, W), rule=rule)  # the same, before clipping
        assert free is not None and np.array_equal(free.in_frame(H, W), mapped.visible)
        both = free.visible & pr["truth"].visible
        d = np.linalg.norm(free.xy[both] - pr["truth"].xy[both], axis=1)
        outside.append(n_out)
        dists.append(d)
        if closeup(pr["source"]):
            close_out.append(n_out)
            close_dists.append(d)
    alld = np.concatenate(dists)
    closed = np.concatenate(close_dists) if close_dists else np.zeros(0)
    return {"outside_total": int(sum(outside)), "outside_max": int(max(outside)),
            "pairs_with_outside": int(sum(o > 0 for o in outside)),
            "visible_total": int(sum(pr["target"].num_visible for pr in pairs)),
            "mean_px": float(alld.mean()), "median_px": float(np.median(alld)),
            "closeup_pairs": len(close_out), "closeup_outside": int(sum(close_out)),
            "closeup_mean_px": float(closed.mean()) if closed.size else float("nan")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--limit", type=int, default=0, help="first N pairs only")
    ap.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = ap.parse_args(argv)
    root = shared_data_dir()
    if root is None or not (root / "deepfashion" / "samples").is_dir():
        raise SystemExit("needs ../shared/data/deepfashion (samples and fasion-annotation-test.csv)")
    pairs = load_pairs(root, args.limit)
    results = {label: measure(pairs, rule) for label, rule in RULES}
    n_close = next(iter(results.values()))["closeup_pairs"]
    print(f"Target poses without a recorded frame (`pose_frame: auto` guess), {len(pairs)} DeepFashion sample "
          f"pairs, 256x176 frame, {next(iter(results.values()))['visible_total']} target keypoints; "
          f"{n_close} close-up sources (no knee or ankle).\n")
    print("| rule | keypoints outside the frame | most in one pair | pairs with any | mean px to true target "
          "| median px | close-ups: outside | close-ups: mean px |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for label, r in results.items():
        print(f"| {label} | {r['outside_total']} | {r['outside_max']} of 18 | {r['pairs_with_outside']} "
              f"| {r['mean_px']:.1f} | {r['median_px']:.1f} | {r['closeup_outside']} | {r['closeup_mean_px']:.1f} |")
    if args.json:
        args.json.write_text(json.dumps({"pairs": len(pairs), "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
