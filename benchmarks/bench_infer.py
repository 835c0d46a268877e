"""Inference throughput: images/s and ms/image, model-only and end to end (files -> files).

    nice .venv/bin/python benchmarks/bench_infer.py [--config synthetic-64] [--weights DIR]
        [--device cpu|cuda] [--precision auto|bf16|fp32] [--batch-sizes 1 32] [--images 64]
        [--workers 2] [--threads 1] [--repeat 3] [--data PREPARED_DIR] [--json FILE]

Model-only times :meth:`GLocalPipeline.forward_batch` on a prepared batch (heatmaps, parsing
estimation, model, conversion to uint8 on the CPU). End to end runs the ``glocal transfer`` job,
writing PNGs: by default on a folder of random source PNGs with OpenPose sidecars and one target
pose JSON; with ``--data`` on a prepared dataset (e.g. SynthPeople) with its ``keypoints.csv`` as
source and target poses and the first ``--images`` rows of its ``pairs-test.csv``. The ratio
end-to-end / model-only shows what the IO costs (target: >= 0.8).

Fair comparison: both paths are warmed up (one untimed batch / one untimed job), process the same
number of images, and are measured ``--repeat`` times *interleaved* (model-only, end to end,
model-only, ...), reporting the median of each, so a change of machine load hits both alike.
Every end-to-end run writes into a fresh folder and must write every output (no output skipped
because it exists, no failure), otherwise the script stops. The header prints the torch thread
count and the load average: on shared CPUs use ``--threads 1`` (torch's default, one thread per
core, spins against other jobs and can make a run 10-40x slower, differently for each path).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

PRECISIONS = {"auto": None, "bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


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


def _job(args: argparse.Namespace, tmp: Path, frame: tuple[int, int]) -> dict:
    """The ``JobSpec`` fields of the measured job (without ``out``)."""
    if args.data is None:
        src, poses = _make_inputs(tmp, args.images, frame)
        return {"source": src, "pose": poses}
    from glocal_cli.data.layout import PreparedDataset, read_pairs_csv, write_pairs_csv

    ds = PreparedDataset(args.data)
    if (ds.manifest.height, ds.manifest.width) != tuple(frame):
        raise SystemExit(f"{args.data}: frame {ds.manifest.height}x{ds.manifest.width} "
                         f"!= the model frame {frame[0]}x{frame[1]}")
    pairs = read_pairs_csv(ds.root / "pairs-test.csv")
    if len(pairs) < args.images:
        pairs += read_pairs_csv(ds.root / "pairs-train.csv")
    if len(pairs) < args.images:
        raise SystemExit(f"{args.data}: {len(pairs)} pairs, fewer than --images {args.images}")
    pairs_file = tmp / "pairs.csv"
    write_pairs_csv(pairs_file, pairs[: args.images])
    kp = ds.root / "keypoints.csv"
    return {"source": ds.root / "images", "pose": kp, "source_pose": kp, "pairs": pairs_file}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="synthetic-64", help="preset of the random model (without --weights)")
    ap.add_argument("--weights", type=Path, default=None)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--precision", default="auto", choices=list(PRECISIONS), help="auto: bf16 on CUDA, fp32 on CPU")
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 32])
    ap.add_argument("--images", type=int, default=64, help="images per measurement (both paths)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    ap.add_argument("--repeat", type=int, default=3, help="interleaved measurements of each path (median)")
    ap.add_argument("--data", type=Path, default=None, help="a prepared dataset in the model frame (e.g. SynthPeople)")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows as JSON")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from glocal_cli.console import set_verbosity
    from glocal_cli.infer.batch import JobSpec, TaskDataset, collate, plan_tasks, run_job
    from glocal_cli.infer.config import InferConfig
    from glocal_cli.infer.pipeline import GLocalPipeline

    set_verbosity(quiet=True)
    dtype = PRECISIONS[args.precision]
    base = GLocalPipeline.from_pretrained(args.weights, device=args.device, dtype=dtype) if args.weights else \
        GLocalPipeline.from_config(args.config, device=args.device, dtype=dtype)
    frame = base.frame_hw
    load = os.getloadavg()
    header = {
        "device": str(base.device),
        "device_name": torch.cuda.get_device_name(base.device) if base.device.type == "cuda" else "cpu",
        "frame": f"{frame[0]}x{frame[1]}", "dtype": str(base.dtype), "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(), "load_average": [round(v, 2) for v in load],
        "model": f"weights {args.weights}" if args.weights else f"random {args.config}",
        "inputs": f"prepared dataset {args.data}" if args.data else "random PNGs + OpenPose sidecars",
        "images": args.images, "repeat": args.repeat, "workers": args.workers,
    }
    print(", ".join(f"{k} {v}" for k, v in header.items()))
    print("| batch | model-only img/s | model-only ms/img | end-to-end img/s | end-to-end ms/img | e2e / model |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        job = _job(args, tmp, frame)
        runs = 0

        def end_to_end(cfg: InferConfig, pipe: GLocalPipeline, expected: int) -> float:
            nonlocal runs
            runs += 1
            spec = JobSpec("transfer", out=tmp / f"out{runs}", overwrite=True, **job)  # a fresh folder every run
            t0 = time.perf_counter()
            report = run_job(pipe, spec, cfg, show_progress=False)
            seconds = time.perf_counter() - t0
            if report.done != expected or report.skipped or report.failed:
                raise SystemExit(f"end-to-end run wrote {report.done} of {expected} outputs "
                                 f"({report.skipped} skipped, {report.failed} failed: "
                                 f"{report.failures[0].error if report.failures else ''})")
            return report.done / seconds

        for bs in args.batch_sizes:
            cfg = InferConfig(batch_size=bs, workers=args.workers, precision=args.precision)
            pipe = base.with_config(batch_size=bs, workers=args.workers, precision=args.precision)
            tasks = plan_tasks(JobSpec("transfer", out=tmp / "plan", **job), cfg, frame)
            ds = TaskDataset(tasks[:bs], "transfer", cfg, frame)
            batch, _, bad = collate([ds[i] for i in range(len(ds))])
            if batch is None or bad:
                raise SystemExit(f"model-only batch: {bad[0]['error'] if bad else 'no item'}")
            if pipe.device.type == "cuda":
                batch = {k: v.pin_memory() for k, v in batch.items()}  # as the job's DataLoader does
            sync = torch.cuda.synchronize if pipe.device.type == "cuda" else (lambda: None)
            reps = max(1, -(-len(tasks) // bs))  # the same number of images as the end-to-end job
            pipe.forward_batch(batch)  # warm-up: first-shape costs, cuDNN autotuning
            end_to_end(cfg, pipe, len(tasks))  # warm-up: worker start-up paths, file caches
            model_rates, e2e_rates = [], []
            for _ in range(args.repeat):
                sync()
                t0 = time.perf_counter()
                for _ in range(reps):
                    pipe.forward_batch(batch)
                sync()
                model_rates.append(reps * bs / (time.perf_counter() - t0))
                e2e_rates.append(end_to_end(cfg, pipe, len(tasks)))
            model_rate, e2e_rate = statistics.median(model_rates), statistics.median(e2e_rates)
            rows.append({"batch": bs, "model_img_s": model_rate, "e2e_img_s": e2e_rate,
                         "model_runs": model_rates, "e2e_runs": e2e_rates})
            print(f"| {bs} | {model_rate:.1f} | {1000 / model_rate:.1f} | {e2e_rate:.1f} | {1000 / e2e_rate:.1f} | "
                  f"{e2e_rate / model_rate:.2f} |", flush=True)
    header["load_average_end"] = [round(v, 2) for v in os.getloadavg()]
    print(f"load average at the end: {header['load_average_end']}")
    if args.json:
        args.json.write_text(json.dumps({**header, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
