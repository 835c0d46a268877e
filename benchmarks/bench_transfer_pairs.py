"""`glocal transfer` over the 59 real DeepFashion sample pairs, end to end: seconds per pair and where they go.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_transfer_pairs.py [--weights weights/default]
        [--threads 1] [--rounds 3] [--set KEY=VALUE ...] [--ref KEY=VALUE ...] [--json out.json]

The job is the CLI's (:func:`glocal_cli.infer.batch.run_job`, default flags): a folder of the 59 source photos
(176x256, cut from the sample panels) with OpenPose sidecars, a folder of target pose files (both recording
their 176x256 canvas) and the pairs CSV; every result written as PNG into a fresh folder. The pipeline is
loaded once and warmed up by one untimed job, then each configuration runs ``--rounds`` times, the
configurations alternating round by round (times on a shared machine are only comparable side by side);
the median is reported. ``--set`` changes the measured configuration (``body.fit.solver=lbfgs``,
``infer.flow=learned``, ...), ``--ref`` adds a reference configuration measured in the same run.

The breakdown times the body fit (:meth:`BodyFlow.fit`), the rest of the 3D step (render + correspondence,
:meth:`BodyFlow.pairs` less its fits) and the model with its composition (:meth:`GLocalPipeline.forward_batch`
less the 3D step); "other" is reading, preparing and writing. The fit cache is cleared before every job, so
each job fits every photo (as a fresh ``glocal transfer`` process does).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from glocal_cli.data.images import save_image
from glocal_cli.data.keypoints import read_keypoint_csv, write_openpose_json
from glocal_cli.paths import default_weights_dir, shared_data_dir

H, W, PAD = 256, 176, 40


def write_inputs(root: Path, folder: Path) -> int:
    """The 59 pairs as a ``glocal transfer`` job: ``sources/`` (+ ``<stem>.json``), ``poses/``, ``pairs.csv``."""
    from glocal_cli.data.images import load_image

    poses = read_keypoint_csv(root / "deepfashion" / "fasion-annotation-test.csv", frame="deepfashion-256x256",
                              to_frame="deepfashion-256x176")
    (folder / "sources").mkdir(parents=True)
    (folder / "poses").mkdir()
    rows = ["from,to"]
    for p in sorted((root / "deepfashion" / "samples").glob("*.png")):
        a, b = p.name[:-4].split(".jpg_")
        sa, sb = a, Path(b).stem
        panels = load_image(p)
        src = np.ascontiguousarray(panels[:, PAD:PAD + W])
        if not (folder / "sources" / f"{sa}.png").exists():
            save_image(folder / "sources" / f"{sa}.png", src)
            write_openpose_json(folder / "sources" / f"{sa}.json", poses[a + ".jpg"], canvas=(H, W))
        write_openpose_json(folder / "poses" / f"{sb}.json", poses[b], canvas=(H, W))
        rows.append(f"{sa}.png,{sb}.json")
    (folder / "pairs.csv").write_text("\n".join(rows) + "\n")
    return len(rows) - 1


class Timers:
    """Wall seconds spent inside a few library methods, by name (outermost call only)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    @contextmanager
    def patch(self, owner: type, name: str, label: str):  # noqa: ANN201
        original = getattr(owner, name)
        timers = self

        def timed(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            t0 = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                timers.seconds[label] += time.perf_counter() - t0

        setattr(owner, name, timed)
        try:
            yield
        finally:
            setattr(owner, name, original)


def run_once(pipeline, folder: Path, out: Path) -> tuple[float, dict[str, float], int]:  # noqa: ANN001
    """One job into a fresh folder: (seconds, breakdown, results written)."""
    from contextlib import ExitStack

    from glocal_cli.infer.batch import JobSpec, run_job
    from glocal_cli.infer.body3d import BodyFlow
    from glocal_cli.infer.pipeline import GLocalPipeline

    flow = pipeline.body_flow
    for attr in ("_cache", "_points"):  # each job fits every photo, as a fresh process does
        if isinstance(getattr(flow, attr, None), dict):
            getattr(flow, attr).clear()
    timers = Timers()
    spec = JobSpec(mode="transfer", source=folder / "sources", out=out, pose=folder / "poses",
                   pairs=folder / "pairs.csv")
    with ExitStack() as stack:
        stack.enter_context(timers.patch(BodyFlow, "fit", "fit"))
        stack.enter_context(timers.patch(BodyFlow, "pairs", "3d"))
        stack.enter_context(timers.patch(GLocalPipeline, "forward_batch", "model"))
        t0 = time.perf_counter()
        report = run_job(pipeline, spec, show_progress=False)
        seconds = time.perf_counter() - t0
    if report.failures:
        raise SystemExit(f"{len(report.failures)} pair(s) failed: {report.failures[0]}")
    s = timers.seconds
    parts = {"fit": s["fit"], "render_correspond": s["3d"] - s["fit"], "model_compose": s["model"] - s["3d"],
             "other": seconds - s["model"]}
    return seconds, parts, report.done


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", type=Path, default=default_weights_dir())
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--ref", action="append", default=[], metavar="KEY=VALUE",
                    help="a setting of a reference configuration measured alongside (e.g. body.fit.solver=lbfgs)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    root = shared_data_dir()
    if root is None:
        raise SystemExit("../shared/data not found (set GLOCAL_SHARED_DATA)")
    from glocal_cli.config import resolve_config
    from glocal_cli.infer.config import resolve_infer_config
    from glocal_cli.infer.pipeline import GLocalPipeline

    def pipeline_for(sets: list[str]) -> GLocalPipeline:
        cfg = resolve_config(None, sets)
        icfg = resolve_infer_config(args.weights, None, sets)  # the weights' recommended settings, under --set
        return GLocalPipeline.from_pretrained(args.weights, device="cpu", config=icfg, body_config=cfg.body)

    configs = {"config": pipeline_for(args.set)}
    if args.ref:
        configs = {"reference": pipeline_for(args.ref), **configs}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        n = write_inputs(root, folder)
        print(f"{n} pairs; torch {torch.__version__}, {torch.get_num_threads()} thread(s), load "
              f"{' '.join(f'{x:.1f}' for x in __import__('os').getloadavg())}, {platform.processor() or 'cpu'}")
        for key, pipe in configs.items():  # warm-up: weights, body model, first-call costs
            run_once(pipe, folder, folder / f"warm-{key}")
        results: dict[str, list[tuple[float, dict[str, float]]]] = {k: [] for k in configs}
        for r in range(args.rounds):
            order = list(configs) if r % 2 == 0 else list(configs)[::-1]
            for key in order:
                seconds, parts, _ = run_once(configs[key], folder, folder / f"out-{key}-{r}")
                results[key].append((seconds, parts))
    summary = {}
    for key, runs in results.items():
        med = statistics.median(s for s, _ in runs)
        parts = {p: statistics.median(r[1][p] for r in runs) / n for p in runs[0][1]}
        summary[key] = {"s_per_pair": med / n, **{f"{p}_s_per_pair": v for p, v in parts.items()},
                        "sets": args.set if key == "config" else args.ref}
        print(f"{key:>9}: {med / n:.3f} s per pair  (" + ", ".join(f"{p} {v:.3f}" for p, v in parts.items())
              + f")  {summary[key]['sets'] or 'defaults'}")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
