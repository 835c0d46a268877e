"""Metric speed: batched torch SSIM + PSNR against the per-image scikit-image loop, with equal values.

    .venv/bin/python benchmarks/bench_metrics.py                 # the DeepFashion + Market samples
    .venv/bin/python benchmarks/bench_metrics.py --threads 1     # single-threaded comparison
    .venv/bin/python benchmarks/bench_metrics.py --flops         # + GEMM / depthwise filter GFLOP/s
    .venv/bin/python benchmarks/bench_metrics.py --pipeline 8570 --device cuda
        # all five metrics (clean protocol) over N synthetic 256x176 PNG pairs through evaluate()

The first mode decodes the sample panels once into uint8 N x H x W x 3 arrays, then times (best of
--repeat), per protocol, the scikit-image loop as users run it (``structural_similarity`` +
``peak_signal_noise_ratio`` on each uint8 pair, the recipe's parameters) and glocal's batched torch
SSIM + PSNR starting from the same arrays (zero-copy views, batches of --batch), prints the speed-up
and the largest differences, and the load average before and after (the machine may be shared).
The pipeline mode uses the real InceptionV3/LPIPS weights when present and random ones otherwise
(then the FID/IS/LPIPS values are not meaningful; only the time is).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from glocal_cli.metrics.psnr import psnr  # noqa: E402
from glocal_cli.metrics.ssim import SSIMSpec, ssim  # noqa: E402

SHARED = REPO.parent / "shared" / "data"


def load_panels(folder: Path, pad: int) -> tuple[np.ndarray, np.ndarray]:
    gts, outs = [], []
    for f in sorted(folder.glob("*.png")):
        a = np.asarray(Image.open(f).convert("RGB"))
        w = a.shape[1] // 3
        gts.append(a[:, w + pad : 2 * w - pad])
        outs.append(a[:, 2 * w + pad : 3 * w - pad])
    return np.stack(gts), np.stack(outs)


def skimage_loop(gt: np.ndarray, out: np.ndarray, spec: SSIMSpec) -> tuple[np.ndarray, np.ndarray]:
    """The per-image loop as users run it: scikit-image on each uint8 H x W x 3 pair."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    s, p = [], []
    for g, o in zip(gt, out):
        dr = float(o.max()) - float(o.min()) if spec.data_range == "generated" else float(spec.data_range)
        s.append(structural_similarity(
            g, o, data_range=dr, gaussian_weights=spec.gaussian_weights, sigma=spec.sigma, win_size=spec.win_size,
            use_sample_covariance=spec.use_sample_covariance, channel_axis=-1))
        p.append(peak_signal_noise_ratio(g, o, data_range=255))
    return np.asarray(s), np.asarray(p)


def torch_batched(gt: np.ndarray, out: np.ndarray, spec: SSIMSpec, batch: int,
                  device: torch.device, compile: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """glocal from the same uint8 N x H x W x 3 arrays: zero-copy (B, 3, H, W) views, batched SSIM + PSNR."""
    s, p = [], []
    with torch.inference_mode():
        tg = torch.from_numpy(gt).permute(0, 3, 1, 2)  # channels-last view of the decoded images, no copy
        to = torch.from_numpy(out).permute(0, 3, 1, 2)
        for i in range(0, tg.shape[0], batch):
            g, o = tg[i : i + batch].to(device), to[i : i + batch].to(device)
            s.append(ssim(o, g, spec, compile=compile))
            p.append(psnr(o, g, compile=compile))
        if device.type == "cuda":
            torch.cuda.synchronize()
        return torch.cat(s).cpu().numpy(), torch.cat(p).cpu().numpy()


def best_of(fn, args: tuple, repeat: int):
    times, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn(*args)
        times.append(time.perf_counter() - t)
    return min(times), result


SETS = [
    # (protocol(s), description, folder, panel pad, SSIM recipe)
    ("paper, pise", "DeepFashion 256x256 panels as stored, sigma 1.5, L=gen. range", "deepfashion", 0,
     SSIMSpec(data_range="generated", sigma=1.5)),
    ("clean", "DeepFashion 256x176, sigma 1.5, L=255", "deepfashion", 40, SSIMSpec(data_range=255.0)),
    ("gfla", "DeepFashion 256x176, uniform 51x51, sample cov.", "deepfashion", 40,
     SSIMSpec(data_range=255.0, gaussian_weights=False, win_size=51, use_sample_covariance=True)),
    ("pidm", "DeepFashion 256x176, sigma 1.2, L=gen. range", "deepfashion", 40,
     SSIMSpec(data_range="generated", sigma=1.2)),
    ("clean", "Market 128x64, sigma 1.5, L=255", "market1501", 0, SSIMSpec(data_range=255.0)),
]


def bench_samples(args) -> None:
    from glocal_cli.metrics.ssim import keep_freed_memory

    # for both sides: without it glibc's dynamic mmap threshold makes scikit-image's 256x256 loop
    # 0.8 or 1.6 s depending on what was allocated before (measured); with it, its faster time
    keep_freed_memory()
    device = torch.device(args.device)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, device {device}, best of {args.repeat}, "
          f"load average {load} ({os.cpu_count()} CPUs)")
    print(f"{'protocol':12s} {'set':58s} {'pairs':>5s} {'skimage s':>10s} {'glocal s':>9s} {'speed-up':>9s} "
          f"{'max|dSSIM|':>11s} {'max|dPSNR|':>11s}")
    for proto, name, folder_name, pad, spec in SETS:
        folder = SHARED / folder_name / "samples"
        if not folder.is_dir():
            print(f"{name}: {folder} missing, skipped")
            continue
        gt, out = load_panels(folder, pad)
        # scikit-image first: Inductor's compile workers (with --compile) would otherwise slow it down
        t_sk, (s_sk, p_sk) = best_of(skimage_loop, (gt, out, spec), args.repeat)
        t = time.perf_counter()
        torch_batched(gt[:2], out[:2], spec, args.batch, device, args.compile)  # warm-up (oneDNN / compile)
        t_warm = time.perf_counter() - t
        t_tc, (s_tc, p_tc) = best_of(torch_batched, (gt, out, spec, args.batch, device, args.compile), args.repeat)
        print(f"{proto:12s} {name:58s} {len(gt):5d} {t_sk:10.3f} {t_tc:9.3f} {t_sk / t_tc:8.1f}x "
              f"{np.abs(s_sk - s_tc).max():11.2e} {np.abs(p_sk - p_tc).max():11.2e}"
              + (f"  (first call, compiling: {t_warm:.1f} s)" if args.compile else ""))
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def bench_flops(args) -> None:
    """What this CPU can do: float32 GEMM (its practical peak) vs the depthwise SSIM filters alone."""
    import torch.nn.functional as F

    from glocal_cli.metrics.ssim import _weights, keep_freed_memory

    keep_freed_memory()
    a = torch.randn(2048, 2048)
    torch.mm(a, a)
    t_mm, _ = best_of(torch.mm, (a, a), args.repeat)
    gemm = 2 * 2048**3 / t_mm / 1e9
    h, w, planes = 256, 176, 16
    w_row, w_col = _weights(SSIMSpec(), planes, torch.float32, torch.device("cpu"))
    maps = torch.randn(2, h, w, planes).permute(0, 3, 1, 2)

    def filters(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(x, w_row, groups=planes), w_col, groups=planes)

    filters(maps)
    t_conv, _ = best_of(filters, (maps,), max(args.repeat, 5))
    wo, ho = w - 10, h - 10
    flop = 2 * planes * 11 * (h * wo + ho * wo) * 2  # 2 images, multiply + add
    print(f"float32 GEMM 2048^3: {gemm:.1f} GFLOP/s; SSIM Gaussian filters (16 planes, 11 taps, valid, "
          f"256x176): {t_conv / 2 * 1e3:.3f} ms/image = {flop / t_conv / 1e9:.1f} GFLOP/s "
          f"({flop / 2 / 1e6:.1f} MFLOP/image); load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def bench_pipeline(args) -> None:
    """All five metrics over N synthetic pairs through evaluate() (clean protocol)."""
    from glocal_cli.metrics.config import EvalConfig
    from glocal_cli.metrics.evaluate import evaluate
    from glocal_cli.metrics.fid import FID_WEIGHTS_GLOB, hub_checkpoint_dir, random_inception_state
    from glocal_cli.metrics.lpips import LPIPS, find_lpips_weights

    tmp = Path(tempfile.mkdtemp(prefix="glocal-bench-"))
    try:
        gt, out = load_panels(SHARED / "deepfashion" / "samples", 40)
        rng = np.random.default_rng(0)
        gen_dir, ref_dir = tmp / "gen", tmp / "ref"
        gen_dir.mkdir()
        ref_dir.mkdir()
        for i in range(args.pipeline):
            k = i % len(gt)
            shift = int(rng.integers(-8, 9))
            Image.fromarray(np.roll(gt[k], shift, axis=1)).save(ref_dir / f"t{i:05d}.png", compress_level=1)
            Image.fromarray(np.roll(out[k], shift, axis=1)).save(gen_dir / f"s{i:05d}_t{i:05d}.png", compress_level=1)
        notes = []
        inception = next(iter(sorted(hub_checkpoint_dir().glob(FID_WEIGHTS_GLOB))), None)
        if inception is None:
            inception = tmp / "pt_inception-2015-12-05-random.pth"
            torch.save(random_inception_state(0), inception)
            notes.append("random InceptionV3 weights (FID/IS values not meaningful)")
        try:
            lpips_dir = find_lpips_weights("alex").heads
        except Exception:  # noqa: BLE001 - absent weights: use random ones for timing
            model = LPIPS("alex")
            lpips_dir = tmp / "lpips"
            lpips_dir.mkdir()
            torch.save({f"lin{i}.model.1.weight": h.model[1].weight.abs() for i, h in enumerate(model.heads())},
                       lpips_dir / "alex.pth")
            torch.save({f"features.{k}": v for k, v in model.features.state_dict().items()},
                       lpips_dir / "alexnet-owt-7be5be79.pth")
            notes.append("random LPIPS weights (values not meaningful)")
        cfg = EvalConfig(protocol="clean", device=args.device, batch_size=args.batch, workers=args.workers,
                         stats_cache_dir=str(tmp / "cache"), worst_k=16)
        t = time.perf_counter()
        res = evaluate(gen_dir, ref_dir, config=cfg, inception_weights=inception, lpips_weights=lpips_dir,
                       out=tmp / "report", progress=False)
        total = time.perf_counter() - t
        print(f"pipeline: {args.pipeline} pairs, clean protocol, device {res.device}, workers {args.workers}, "
              f"batch {args.batch}: {total:.1f} s (real-set statistics computed, not cached)")
        for m in res.metrics:
            print(f"  {m.key:8s} {m.status:7s} {m.value}")
        for n in notes:
            print("  note:", n)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch default)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--pipeline", type=int, default=0, help="run evaluate() on N synthetic pairs instead")
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--compile", action="store_true",
                    help="glocal side with compile=True (torch.compile'd SSIM/PSNR; the warm-up compiles)")
    ap.add_argument("--flops", action="store_true", help="also measure GEMM and depthwise-filter GFLOP/s")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.pipeline:
        bench_pipeline(args)
    else:
        bench_samples(args)
        if args.flops:
            bench_flops(args)


if __name__ == "__main__":
    main()
