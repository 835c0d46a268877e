"""Training throughput (images/s) and peak memory per stage.

Each stage runs in a fresh process on a SynthPeople set: ``--warmup`` steps (first-step allocation,
VGG construction, cuDNN autotuning), then ``--steps`` timed steps resumed from that checkpoint; the
throughput is the timed part only. Peak memory: ``torch.cuda.max_memory_allocated`` on CUDA, the
process's peak resident set (ru_maxrss) on CPU.

    python benchmarks/bench_train.py                        # CPU, synthetic-64 preset, 64x44, batch 8
    python benchmarks/bench_train.py --device cuda --config deepfashion-256 --size 256x176 --batch 8 \\
        --set train.precision=bf16 --set loss.allow_random_vgg=true --steps 50

Prints a Markdown table (and ``--json FILE`` writes the numbers).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

STAGES = ("semantic", "flow", "generator", "inpaint")


def _worker(args: argparse.Namespace) -> None:
    import torch

    from glocal_cli.train.trainer import train

    if args.threads:
        torch.set_num_threads(args.threads)
    sets = [f"train.batch_size={args.batch}", "train.val_every=0", "train.log_every=1000000",
            "train.image_every=1000000", "train.ckpt_every=1000000", "data.workers=0",
            "train.allow_untrained_semantic=true", *args.set]  # throughput only: each stage runs on its own
    common = dict(stage=args.stage, runs_dir=args.runs, name=f"bench-{args.stage}", device=args.device)
    train(args.data, args.config, sets, max_steps=args.warmup, overwrite=True, **common)
    if args.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    res = train(args.data, args.config, sets, max_steps=args.warmup + args.steps, resume="auto", **common)
    peak = (torch.cuda.max_memory_allocated() if args.device.startswith("cuda")
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    print("BENCH " + json.dumps({"stage": args.stage, "images_per_second": res.stages[0].images_per_second,
                                 "peak_memory_mib": peak / 2**20}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="synthetic-64")
    p.add_argument("--size", default="64x44", help="HxW of the SynthPeople set (must match the config)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--stages", default=",".join(STAGES))
    p.add_argument("--set", action="append", default=[], help="config override (repeatable)")
    p.add_argument("--data", default="", help="a prepared dataset (default: a fresh SynthPeople set)")
    p.add_argument("--json", default="")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--stage", default="", help=argparse.SUPPRESS)
    p.add_argument("--runs", default="", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        _worker(args)
        return
    if not any(s.startswith("loss.allow_random_vgg") for s in args.set):
        args.set.append("loss.allow_random_vgg=true")  # the cost is the same with real weights
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data
        if not data:
            from glocal_cli.synth.dataset import prepare_synthetic

            h, w = (int(v) for v in args.size.lower().split("x"))
            data = str(Path(tmp) / "synth")
            prepare_synthetic(data, identities=8, poses_per_identity=6, size=(h, w), seed=0, workers=1,
                              show_progress=False, test_fraction=0.25)
        rows = []
        for stage in args.stages.split(","):
            cmd = [sys.executable, __file__, "--worker", "--stage", stage, "--runs", str(Path(tmp) / "runs"),
                   "--data", data, "--config", args.config, "--batch", str(args.batch), "--steps", str(args.steps),
                   "--warmup", str(args.warmup), "--device", args.device, "--threads", str(args.threads)]
            for s in args.set:
                cmd += ["--set", s]
            out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ})
            line = [ln for ln in out.stdout.splitlines() if ln.startswith("BENCH ")]
            if out.returncode or not line:
                print(f"{stage}: failed\n{out.stderr[-2000:]}", file=sys.stderr)
                continue
            rows.append(json.loads(line[-1][6:]))
    import torch

    dev = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else f"CPU ({os.cpu_count()} cores)"
    print(f"\n{args.config}, {args.size}, batch {args.batch}, device {args.device} [{dev}], "
          f"{args.steps} timed steps, overrides {args.set}\n")
    print("| stage | images/s | peak memory (MiB) |\n| --- | ---: | ---: |")
    for r in rows:
        print(f"| {r['stage']} | {r['images_per_second']:.2f} | {r['peak_memory_mib']:.0f} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"device": dev, "args": vars(args), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
