"""Inference throughput: images/s and ms/image, model-only and end to end (files -> files).

    nice .venv/bin/python benchmarks/bench_infer.py [--config synthetic-64] [--weights DIR]
        [--device cpu|cuda] [--batch-sizes 1 32] [--images 64] [--workers 2]

Model-only times :meth:`GLocalPipeline.forward_batch` on a prepared batch (heatmaps, parsing
estimation, model, conversion to uint8 on the CPU). End to end runs the ``glocal transfer`` job on
a folder of source PNGs with OpenPose sidecars and target pose JSON files, writing PNGs. The ratio
end-to-end / model-only shows what the IO costs (target: >= 0.8).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def _make_inputs(folder: Path, n: int, hw: tuple[int, int]) -> tuple[Path, Path]:
    from glocal_cli.data.images import save_image
    from glocal_cli.data.keypoints import Pose, write_openpose_json

    src, poses = folder / "sources", folder / "poses"
    src.mkdir()
    poses.mkdir()
    rng = np.random.default_rng(0)
    h, w = hw
    xs = np.array([0.5, 0.5, 0.35, 0.3, 0.28, 0.65, 0.7, 0.72, 0.4, 0.4, 0.4, 0.6, 0.6, 0.6, 0.45, 0.55, 0.42, 0.58])
    ys = np.array([0.1, 0.2, 0.2, 0.35, 0.5, 0.2, 0.35, 0.5, 0.55, 0.72, 0.9, 0.55, 0.72, 0.9, 0.08, 0.08, 0.09, 0.09])
    pose = Pose(np.stack([xs * w, ys * h], 1), np.ones(18, bool))
    for i in range(n):
        save_image(src / f"img_{i:05d}.png", (rng.random((h, w, 3)) * 255).astype(np.uint8))
        write_openpose_json(src / f"img_{i:05d}.json", pose)
    write_openpose_json(poses / "target.json", pose)
    return src, poses


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="synthetic-64", help="preset of the random model (without --weights)")
    ap.add_argument("--weights", type=Path, default=None)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 32])
    ap.add_argument("--images", type=int, default=64, help="images per measurement")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from glocal_cli.console import set_verbosity
    from glocal_cli.infer.batch import JobSpec, TaskDataset, collate, plan_tasks, run_job
    from glocal_cli.infer.config import InferConfig
    from glocal_cli.infer.pipeline import GLocalPipeline

    set_verbosity(quiet=True)
    base = GLocalPipeline.from_pretrained(args.weights, device=args.device) if args.weights else \
        GLocalPipeline.from_config(args.config, device=args.device)
    frame = base.frame_hw
    print(f"device {base.device} ({torch.cuda.get_device_name(base.device) if base.device.type == 'cuda' else 'cpu'}), "
          f"frame {frame[0]}x{frame[1]}, dtype {base.dtype}, torch threads {torch.get_num_threads()}, "
          f"model {'weights ' + str(args.weights) if args.weights else 'random ' + args.config}")
    print("| batch | model-only img/s | model-only ms/img | end-to-end img/s | end-to-end ms/img | e2e / model |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory() as tmp:
        src, poses = _make_inputs(Path(tmp), args.images, frame)
        for bs in args.batch_sizes:
            cfg = InferConfig(batch_size=bs, workers=args.workers)
            pipe = base.with_config(batch_size=bs, workers=args.workers)
            spec = JobSpec("transfer", src, Path(tmp) / f"out{bs}", pose=poses)
            tasks = plan_tasks(spec, cfg, frame)
            ds = TaskDataset(tasks[:bs], "transfer", cfg, frame)
            batch, _, _ = collate([ds[i] for i in range(len(ds))])
            pipe.forward_batch(batch)  # warm-up
            sync = torch.cuda.synchronize if pipe.device.type == "cuda" else (lambda: None)
            reps = max(1, args.images // bs)
            sync()
            t0 = time.perf_counter()
            for _ in range(reps):
                pipe.forward_batch(batch)
            sync()
            model_rate = reps * bs / (time.perf_counter() - t0)
            t0 = time.perf_counter()
            report = run_job(pipe, spec, cfg, show_progress=False)
            e2e_rate = report.done / (time.perf_counter() - t0)
            print(f"| {bs} | {model_rate:.1f} | {1000 / model_rate:.1f} | {e2e_rate:.1f} | {1000 / e2e_rate:.1f} | "
                  f"{e2e_rate / model_rate:.2f} |", flush=True)


if __name__ == "__main__":
    main()
