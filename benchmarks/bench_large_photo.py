"""Peak memory and wall time of ``glocal transfer`` (or ``glocal inpaint``) on one phone-size photo (default
4400x6400, 28 MP).

    python benchmarks/bench_large_photo.py [--height 6400 --width 4400] [--threads 2] [--json out.json]
        [--inpaint [--fill texture|semantic|telea]]

The photo is an example person (``examples/sources/person_00.png`` with its pose sidecar) upscaled to the size
asked for, the target one example pose; the command runs in a fresh process (``glocal transfer`` with its
defaults: 3D body fit, full-resolution blend at the photo's size), and the peak resident memory of that process
(``ru_maxrss`` of the child) and its wall time are reported. ``--inpaint`` runs ``glocal inpaint`` instead with a
mask of irregular strokes (seeded, 10-20% of the photo) drawn at the photo's size, with the default
``infer.inpaint_fill`` or the one ``--fill`` names.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--height", type=int, default=6400)
    ap.add_argument("--width", type=int, default=4400)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--inpaint", action="store_true", help="glocal inpaint with a stroke mask instead")
    ap.add_argument("--fill", choices=["texture", "semantic", "telea"], help="infer.inpaint_fill (with --inpaint)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    sys.path.insert(0, str(REPO))
    from glocal_cli.data.images import load_image, resize_image, save_image
    from glocal_cli.data.keypoints import read_pose_file, write_openpose_json

    src = REPO / "examples" / "sources" / "person_00.png"
    photo = load_image(src)
    pose, _ = read_pose_file(src.with_suffix(".json"))
    sy, sx = args.height / photo.shape[0], args.width / photo.shape[1]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        big = resize_image(photo, args.height, args.width, "bicubic")
        save_image(tmp / "big.png", big)
        write_openpose_json(tmp / "big.json", pose.transform(sx, sy, 0, 0), canvas=(args.height, args.width))
        del big
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
        cmd = [sys.executable, "-m", "glocal_cli", "-q", "transfer", "--source", str(tmp / "big.png"),
               "--pose", str(REPO / "examples" / "poses" / "pose_03.json"), "--out", str(tmp / "out"),
               "--set", "infer.workers=0"]
        if args.inpaint:
            from glocal_cli.data.masks import irregular_mask

            small = irregular_mask(args.height // 16, args.width // 16, 1, 7)  # bin 1: 10-20% of the photo
            mask = resize_image(small.astype("uint8") * 255, args.height, args.width, "nearest")
            save_image(tmp / "big_mask.png", mask)
            del small, mask
            cmd = [sys.executable, "-m", "glocal_cli", "-q", "inpaint", "--source", str(tmp / "big.png"),
                   "--mask", str(tmp / "big_mask.png"), "--out", str(tmp / "out"), "--set", "infer.workers=0"]
            if args.fill:
                cmd += ["--set", f"infer.inpaint_fill={args.fill}"]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, env=env, cwd=REPO)
        wall = time.perf_counter() - t0
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        out = load_image(next(p for p in (tmp / "out").glob("*.png") if "masked" not in p.name))
    report = {"photo": [args.height, args.width], "megapixels": round(args.height * args.width / 1e6, 1),
              "wall_s": round(wall, 1), "peak_rss_mb": round(peak_mb), "result": list(out.shape[:2]),
              "threads": args.threads, "task": "inpaint" if args.inpaint else "transfer",
              **({"fill": args.fill or "default"} if args.inpaint else {})}
    print(json.dumps(report))
    assert out.shape[:2] == (args.height, args.width), "the result is not at the photo's size"
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
