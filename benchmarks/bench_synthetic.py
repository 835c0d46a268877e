"""SynthPeople throughput: images/s of ``prepare-data synthetic`` and CPU cost per stage.

    nice .venv/bin/python benchmarks/bench_synthetic.py [--identities 100] [--poses 8]
        [--size 256x176] [--workers 2] [--body flat|anny] [--json]

Two measurements:

1. *Stages* (one process): CPU milliseconds per image for rendering, the RGB PNG, the parsing
   PNG and the surface map (the file writes included), over ``--stage-identities`` identities.
2. *End to end*: :func:`prepare_synthetic` into a temporary folder with ``--workers`` processes,
   as the command runs it (process start, pose bank, files, index files). Reported: wall-clock
   images/s of the render phase and of the whole run, and the CPU seconds of all processes.

On a shared machine the wall clock depends on what else runs: the script prints the load average
and the CPU-bound rate ``workers * 1000 / (CPU ms per image)``, what ``--workers`` idle cores reach.
The target (issue 3) is >= 200 images/s at 256x176 with 2 workers on 2 cores for the flat figures;
for ``--body anny`` (issue 12) >= 50 images/s, each image with the correspondence of its two pairs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def stage_costs(identities: int, poses: int, height: int, width: int, folder: Path) -> dict[str, float]:
    """CPU ms per image of each stage, in this process (OpenCV single-threaded, like a worker)."""
    import cv2

    from glocal_cli.data.correspondence import SurfaceMap
    from glocal_cli.synth.poses import PoseBank, find_pose_csv
    from glocal_cli.synth.render import render_person
    from glocal_cli.synth.writer import identity_rng, sample_appearance, write_png

    cv2.setNumThreads(1)
    bank = PoseBank(find_pose_csv())
    totals = {"render": 0.0, "image_png": 0.0, "parsing_png": 0.0, "surface_npz": 0.0}
    n = 0
    for i in range(identities):
        rng = identity_rng(0, i)
        app = sample_appearance(rng)
        for k in range(poses):
            t = time.process_time()
            person = render_person(bank.sample(rng, height, width), app, height, width, rng)
            totals["render"] += time.process_time() - t
            t = time.process_time()
            write_png(folder / f"{i}_{k}.png", person.image)
            totals["image_png"] += time.process_time() - t
            t = time.process_time()
            write_png(folder / f"{i}_{k}_parsing.png", person.parsing)
            totals["parsing_png"] += time.process_time() - t
            t = time.process_time()
            SurfaceMap(person.part, person.u, person.v, person.frames, person.yaw).save(folder / f"{i}_{k}.npz")
            totals["surface_npz"] += time.process_time() - t
            n += 1
    out = {k: 1000.0 * v / n for k, v in totals.items()}
    out["total"] = sum(out.values())
    return out


def anny_stage_costs(identities: int, poses: int, height: int, width: int, folder: Path,
                     pairs_per_image: int = 2) -> dict[str, float]:
    """CPU ms per image of each stage of the Anny kind, in this process (one thread, like a worker)."""
    import cv2
    import torch

    from glocal_cli.body.correspond import save_correspondence
    from glocal_cli.synth.anny_people import (
        anny_pairs,
        identity_correspondence,
        load_anny_body,
        render_anny_identity,
    )
    from glocal_cli.synth.anny_poses import REAL_POSES_FILE, RealPoses
    from glocal_cli.synth.writer import write_png

    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    body = load_anny_body()
    real = RealPoses(REAL_POSES_FILE)
    render_anny_identity(body, 0, identities, poses, height, width, real)  # warm-up (first-call costs)
    totals = {"render": 0.0, "image_png": 0.0, "parsing_png": 0.0, "correspondence": 0.0, "correspondence_npz": 0.0}
    n = 0
    pairs = anny_pairs(poses, pairs_per_image)
    for i in range(identities):
        t = time.process_time()
        ident = render_anny_identity(body, 0, i, poses, height, width, real)
        totals["render"] += time.process_time() - t
        for k in range(poses):
            t = time.process_time()
            write_png(folder / f"{i}_{k}.png", ident.images[k])
            totals["image_png"] += time.process_time() - t
            t = time.process_time()
            write_png(folder / f"{i}_{k}_parsing.png", ident.parsing[k])
            totals["parsing_png"] += time.process_time() - t
        t = time.process_time()
        corr = identity_correspondence(ident, pairs)
        totals["correspondence"] += time.process_time() - t
        t = time.process_time()
        for p in range(len(pairs)):  # as the writer does: the float32 flow, rounded to float16 once
            save_correspondence(folder / f"{i}_pair{p}.npz", corr.flow[p], corr.visibility[p])
        totals["correspondence_npz"] += time.process_time() - t
        n += poses
    out = {k: 1000.0 * v / n for k, v in totals.items()}
    out["total"] = sum(out.values())
    return out


def end_to_end(identities: int, poses: int, size: str, workers: int, seed: int, folder: Path,
               body: str = "flat", pairs_per_image: int = 2) -> dict[str, float]:
    """One real run of :func:`prepare_synthetic`."""
    from glocal_cli.data.config import AnnySynthConfig
    from glocal_cli.synth.dataset import prepare_synthetic

    cpu0 = _cpu_seconds()
    t0 = time.perf_counter()
    summary = prepare_synthetic(folder, identities=identities, poses_per_identity=poses, size=size, seed=seed,
                                workers=workers, show_progress=False, body=body,
                                anny=AnnySynthConfig(pairs_per_image=pairs_per_image))  # fmt: skip
    wall = time.perf_counter() - t0
    cpu = _cpu_seconds() - cpu0
    return {
        "images": summary.images,
        "workers": summary.workers,
        "render_wall_s": summary.render_s,
        "render_images_per_s": summary.images_per_second,
        "total_wall_s": wall,
        "total_images_per_s": summary.images / wall,
        "cpu_s": cpu,
        "cpu_ms_per_image": 1000.0 * cpu / summary.images,
        "cpu_bound_images_per_s": summary.workers * summary.images / cpu if cpu > 0 else 0.0,
        "bytes_per_image": sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / summary.images,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--identities", type=int, default=100)
    ap.add_argument("--poses", type=int, default=8, help="poses per identity")
    ap.add_argument("--size", default="256x176")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--body", choices=("flat", "anny"), default="flat", help="SynthPeople kind")
    ap.add_argument("--pairs-per-image", type=int, choices=(1, 2), default=2, help="--body anny: pairs per image")
    ap.add_argument("--stage-identities", type=int, default=10, help="identities for the per-stage costs (0: skip)")
    ap.add_argument("--keep", type=Path, default=None, help="write the dataset here and keep it")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = ap.parse_args()

    from glocal_cli.synth.dataset import parse_synthetic_size

    height, width = parse_synthetic_size(args.size)
    result: dict[str, object] = {
        "size": f"{height}x{width}",
        "body": args.body,
        "identities": args.identities,
        "poses_per_identity": args.poses,
        "cpus": os.cpu_count(),
        "load_before": [round(v, 2) for v in os.getloadavg()],
    }
    tmp = Path(tempfile.mkdtemp(prefix="bench-synth-"))
    try:
        if args.stage_identities > 0:
            stage_dir = tmp / "stages"
            stage_dir.mkdir()
            if args.body == "anny":
                result["stage_cpu_ms"] = anny_stage_costs(args.stage_identities, args.poses, height, width, stage_dir,
                                                          args.pairs_per_image)
            else:
                result["stage_cpu_ms"] = stage_costs(args.stage_identities, args.poses, height, width, stage_dir)
        out = args.keep if args.keep is not None else tmp / "dataset"
        result["end_to_end"] = end_to_end(args.identities, args.poses, args.size, args.workers, args.seed, out,
                                          args.body, args.pairs_per_image)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result["load_after"] = [round(v, 2) for v in os.getloadavg()]

    if args.json:
        print(json.dumps(result, default=lambda v: round(float(v), 3) if isinstance(v, (float, np.floating)) else v))
        return
    print(f"SynthPeople ({args.body}) {result['size']}, {args.identities} identities x {args.poses} poses, "
          f"{os.cpu_count()} CPUs, load average {result['load_before']} -> {result['load_after']}")  # fmt: skip
    if "stage_cpu_ms" in result:
        stages = result["stage_cpu_ms"]
        assert isinstance(stages, dict)
        print("CPU ms per image: " + ", ".join(f"{k} {v:.2f}" for k, v in stages.items()))
        print(f"  -> one core: {1000.0 / stages['total']:.0f} images/s")
    e2e = result["end_to_end"]
    assert isinstance(e2e, dict)
    print(f"end to end, {e2e['workers']} workers: render phase {e2e['render_images_per_s']:.0f} images/s "
          f"({e2e['render_wall_s']:.1f} s), whole run {e2e['total_images_per_s']:.0f} images/s "
          f"({e2e['total_wall_s']:.1f} s)")  # fmt: skip
    print(f"  CPU {e2e['cpu_ms_per_image']:.2f} ms per image (all processes) -> "
          f"{e2e['cpu_bound_images_per_s']:.0f} images/s on {e2e['workers']} idle cores; "
          f"{e2e['bytes_per_image'] / 1024:.0f} KiB per image on disk")  # fmt: skip


if __name__ == "__main__":
    main()
