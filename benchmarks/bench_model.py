"""Benchmark of the GLocal model core: parameters, FLOPs, speed and peak memory.

Usage (run with ``nice`` on shared machines)::

    nice .venv/bin/python benchmarks/bench_model.py                 # CPU: 64x44 and 256x176
    nice .venv/bin/python benchmarks/bench_model.py --device cuda   # + CUDA (bf16 autocast, channels_last)
    .venv/bin/python benchmarks/bench_model.py --json out.json
    # the model before the texture path (the architecture of weights saved before it), forward only:
    .venv/bin/python benchmarks/bench_model.py --modes forward --set model.texture_skips=false \
        --set model.pixel_blend=false

Each case (frame, device, pass) runs in a fresh subprocess so that its peak memory is its own.
The model at 64x44 is the ``synthetic-64`` preset, at 256x176 the paper-scale ``deepfashion-256``;
``--set model.key=value`` overrides both. FLOPs are counted with ``torch.utils.flop_counter`` (one
multiply-add = 2 FLOPs; ops it does not count, e.g. grid_sample, softmax, logsumexp, are left out).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CASES = {"64x44": "synthetic-64", "256x176": "deepfashion-256"}


def _inputs(b: int, h: int, w: int, device: str):  # noqa: ANN202
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(0)
    parsing = F.one_hot(torch.randint(0, 8, (b, h, w), generator=g), 8).permute(0, 3, 1, 2).float()
    tensors = {"source_image": torch.rand(b, 3, h, w, generator=g) * 2 - 1,
               "source_pose": torch.rand(b, 18, h, w, generator=g),
               "target_pose": torch.rand(b, 18, h, w, generator=g),
               "source_parsing": parsing}
    fmt = torch.channels_last if device.startswith("cuda") else torch.contiguous_format
    return {k: v.to(device).contiguous(memory_format=fmt) for k, v in tensors.items()}


def _params(model) -> dict[str, int]:  # noqa: ANN001
    from glocal_cli.models.discriminator import Discriminator

    out = {"semantic": sum(p.numel() for p in model.semantic.parameters()),
           "flow": sum(p.numel() for p in model.flow.parameters()) if model.flow is not None else 0}
    for name, child in model.generator.named_children():
        out[f"generator.{name}"] = sum(p.numel() for p in child.parameters())
    out["generator"] = sum(p.numel() for p in model.generator.parameters())
    out["total (semantic+flow+generator)"] = sum(p.numel() for p in model.parameters())
    out["discriminator"] = sum(p.numel() for p in Discriminator(model.cfg).parameters())
    return out


def run_case(frame: str, device: str, mode: str, batch: int, overrides: list[str], reps: int) -> dict:
    """One measurement in this process: ``mode`` is 'forward' (eval, no_grad) or 'train' (forward+backward)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from glocal_cli.config import resolve_config
    from glocal_cli.models.generator import GLocalModel

    cfg = resolve_config(CASES[frame], overrides=overrides)
    h, w = (int(v) for v in frame.split("x"))
    torch.manual_seed(0)
    model = GLocalModel(cfg.model, h, w).to(device)
    cuda = device.startswith("cuda")
    if cuda:
        model = model.to(memory_format=torch.channels_last)
    inputs = _inputs(batch, h, w, device)
    result: dict = {"frame": frame, "preset": CASES[frame], "device": device, "mode": mode, "batch": batch}
    if mode == "forward":
        result["params"] = _params(model)

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    lst_time: list[float] = []
    if model.generator.lst is not None:
        start: list[float] = []

        def before(*_: object) -> None:
            sync()
            start.append(time.perf_counter())

        def after(*_: object) -> None:
            sync()
            lst_time.append(time.perf_counter() - start[-1])

        model.generator.lst.register_forward_pre_hook(before)
        model.generator.lst.register_forward_hook(after)

    def step() -> None:
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=cuda):
            if mode == "forward":
                with torch.no_grad():
                    model(**inputs, check_finite=False)
            else:
                out = model(**inputs, check_finite=False)
                (out.image.float().abs().mean() + out.target_parsing_logits.float().square().mean()).backward()

    model.train(mode == "train")
    if mode == "forward":
        flops = FlopCounterMode(display=False, depth=3)
        with flops:
            step()
        per_module = {k: v for k, v in ((str(m), sum(c.values())) for m, c in flops.get_flop_counts().items())}
        result["gflops_per_image"] = flops.get_total_flops() / batch / 1e9
        result["gflops_by_module"] = {k.split(".", 1)[1]: v / batch / 1e9 for k, v in per_module.items()
                                      if 1 <= k.count(".") <= 2}
    step()  # warm-up
    sync()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    lst_time.clear()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t0)
        model.zero_grad(set_to_none=True)
    med = statistics.median(times)
    result["seconds_per_batch"] = med
    result["images_per_s"] = batch / med
    if lst_time:
        result["lst_fraction"] = statistics.median(lst_time) / med
    if cuda:
        result["peak_mem_mib"] = torch.cuda.max_memory_allocated() / 2**20
    else:
        result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (CPU cases run too unless --skip-cpu)")
    parser.add_argument("--skip-cpu", action="store_true", help="with --device cuda: only the CUDA cases")
    parser.add_argument("--frames", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--modes", nargs="+", default=["forward", "train"], choices=["forward", "train"],
                        help="forward (eval, no_grad) and/or train (forward+backward)")
    parser.add_argument("--train-batch", type=int, default=2, help="batch of the forward+backward cases")
    parser.add_argument("--cuda-batch", type=int, default=8)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="config override a.b=c")
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:  # child process
        frame, device, mode, batch = args.case.split(",")
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        print(json.dumps(run_case(frame, device, mode, int(batch), args.overrides, args.reps)))
        return
    devices = ([] if args.skip_cpu and args.device != "cpu" else ["cpu"]) + ([args.device] if args.device != "cpu" else [])
    import torch

    print(f"torch {torch.__version__}, CPU threads {args.threads or torch.get_num_threads()}")
    results = []
    for device in devices:
        for frame in args.frames:
            for mode in args.modes:
                batch = 1 if (mode == "forward" and device == "cpu") else (
                    args.cuda_batch if device != "cpu" else args.train_batch)
                cmd = [sys.executable, __file__, "--case", f"{frame},{device},{mode},{batch}",
                       "--reps", str(args.reps), "--threads", str(args.threads), *sum((["--set", o] for o in args.overrides), [])]
                out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
                results.append(json.loads(out.strip().splitlines()[-1]))
                r = results[-1]
                mem = r.get("peak_mem_mib", r.get("peak_rss_mib"))
                line = (f"{device:6s} {frame:8s} {mode:8s} batch {batch:2d}: {r['seconds_per_batch'] * 1000:8.1f} ms, "
                        f"{r['images_per_s']:7.2f} img/s, peak mem {mem:7.0f} MiB")
                if "gflops_per_image" in r:
                    line += f", {r['gflops_per_image']:.2f} GFLOPs/img"
                if "lst_fraction" in r:
                    line += f", LST {100 * r['lst_fraction']:.1f}%"
                print(line, flush=True)
    for r in results:
        if "params" in r:
            print(f"\nparameters ({r['preset']}):")
            for k, v in r["params"].items():
                print(f"  {k:34s} {v / 1e6:8.3f} M")
            print(f"GFLOPs per image by module ({r['frame']}):")
            for k, v in r["gflops_by_module"].items():
                print(f"  {k:34s} {v:8.3f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
