"""Fine-tune on the 59 real DeepFashion sample pairs, scored by k-fold over identities.

    python benchmarks/kfold_real_pairs.py [--weights weights/default] [--folds 3] [--work runs/kfold-real]
        [--semantic-steps 300] [--generator-steps 300] [--lr-factor 0.5] [--threads 1] [--parallel 2]
        [--json docs/results-kfold.json] [--picture docs/pictures/kfold_results.png] [--export-all DIR]

The 59 sample pairs (``../shared/data/deepfashion/samples``) are the only real same-person pairs with a
ground truth here. Using them to fine-tune is allowed when every score comes from pairs whose identity the
model never saw (``../shared/data/README.md``). This script:

1. rebuilds a raw DeepFashion layout from the panels (``img/<MEN|WOMEN>/<category>/id_<8 digits>/<NN>_<V>_<view>.jpg``,
   the 176x256 source and target panels; the names map back to the community's);
2. splits the identities (DeepFashion's ``id_XXXXXXXX/NN`` item) into ``--folds`` folds (seeded shuffle);
   per fold writes the community split files (``train.lst``, ``test.lst``, pair and annotation CSVs; the
   training pairs are used both ways);
3. per fold, ``glocal prepare-data deepfashion`` at the weights' frame with ``--correspondence body3d
   --parsing body3d`` (the parsing is the fitted mesh's, refined by the plain studio wall's person mask:
   pseudo labels, there is no human parsing of these photos);
4. per fold, ``glocal train --weights W --stage semantic`` then ``--stage generator`` (the flow stage is not
   re-trained: transfer uses the 3D flow), with ``train.finetune_lr_factor``;
5. per fold, the held-out pairs through ``GLocalPipeline.transfer_batch`` (the default ``--flow body3d`` and
   every default of ``glocal transfer``), at the photo's size, clean protocol against the target photo, beside
   the same pairs under ``--weights`` unchanged and the panels' third column (Deformable GAN).

Scores are per pair, so the k folds together score all 59 pairs once each. Every step is skipped when its
output exists (re-running resumes). ``--export-all DIR`` also fine-tunes on all 59 pairs and writes those
weights (for a user's own photos; never score them on these pairs).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_body_pairs import clean_scores, load_samples, results_picture, save_small_png, shared_root  # noqa: E402

from glocal_cli.data.naming import deepfashion_path_from_name, identity_of  # noqa: E402
from glocal_cli.paths import default_weights_dir  # noqa: E402


def sample_pairs(root: Path) -> list[tuple[str, str]]:
    """``(from, to)`` image names of every sample panel (``A.jpg_B.jpg.png``)."""
    out = []
    for p in sorted((root / "deepfashion" / "samples").glob("*.png")):
        a, b = p.name[: -len(".png")].split(".jpg_")
        out.append((a + ".jpg", b))
    return out


def build_raw(root: Path, raw: Path) -> int:
    """The panels' source and target photos as a raw DeepFashion layout under ``raw/img``; returns the count."""
    from PIL import Image

    n = 0
    for p in sorted((root / "deepfashion" / "samples").glob("*.png")):
        a, b = p.name[: -len(".png")].split(".jpg_")
        panels = np.asarray(Image.open(p).convert("RGB"))
        for k, name in enumerate((a + ".jpg", b)):
            dst = raw / deepfashion_path_from_name(name)
            if not dst.is_file():
                dst.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(panels[:, 256 * k + 40: 256 * k + 216]).save(dst, quality=98)
            n += 1
    return n


def write_folds(root: Path, pairs: list[tuple[str, str]], work: Path, folds: int, seed: int) -> list[Path]:
    """Per fold a split folder with the community files; identities shuffled with ``seed``, dealt round-robin."""
    ids = sorted({identity_of(a) for a, _ in pairs})
    random.Random(seed).shuffle(ids)
    header, *rows = (root / "deepfashion" / "fasion-annotation-test.csv").read_text().splitlines()
    dirs = []
    for k in range(folds):
        held = set(ids[k::folds])
        d = work / f"split{k}"
        d.mkdir(parents=True, exist_ok=True)
        split = {"train": [p for p in pairs if identity_of(p[0]) not in held],
                 "test": [p for p in pairs if identity_of(p[0]) in held]}
        for s, ps in split.items():
            names = sorted({n for p in ps for n in p})
            (d / f"{s}.lst").write_text("\n".join(names) + "\n")
            both = ps + ([(b, a) for a, b in ps] if s == "train" else [])
            (d / f"fashion-pairs-{s}.csv").write_text("from,to\n" + "".join(f"{a},{b}\n" for a, b in both))
            keep = set(names)
            (d / f"fasion-annotation-{s}.csv").write_text(
                "\n".join([header] + [r for r in rows if r.split(":", 1)[0] in keep]) + "\n")
        dirs.append(d)
    return dirs


def run(cmd: list[str], log: Path, threads: int) -> None:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONPATH=str(ROOT))
    with log.open("w") as fh:
        res = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=ROOT, check=False)
    if res.returncode:
        raise SystemExit(f"{' '.join(cmd[:4])} ... failed (exit {res.returncode}); see {log}")


def frame_of(weights: Path) -> str:
    frame = json.loads((weights / "config.json").read_text())["frame"]
    return f"{frame['height']}x{frame['width']}"


def fine_tune(name: str, split: Path | None, raw: Path, work: Path, weights: Path, args: argparse.Namespace) -> Path:
    """prepare-data + semantic + generator fine-tune of one fold (or of all pairs); returns the weights folder."""
    glocal = [sys.executable, "-m", "glocal_cli"]
    data = work / f"data-{name}"
    if not (data / "manifest.json").is_file():
        cmd = glocal + ["prepare-data", "deepfashion", "--raw", str(raw), "--out", str(data), "--size",
                        frame_of(weights), "--correspondence", "body3d", "--parsing", "body3d", "--overwrite"]
        run(cmd + (["--split-dir", str(split)] if split else []), work / f"{name}.prepare.log", args.threads)
    out = work / "runs" / name / "weights"
    if (out / "config.json").is_file() and (work / "runs" / name / "generator.done").is_file():
        return out
    common = ["--data", str(data), "--config", str(args.config), "--weights", str(weights), "--out",
              str(work / "runs"), "--name", name, "--device", "cpu",
              "--set", f"train.finetune_lr_factor={args.lr_factor}", "--set", "train.val_fid=false",
              "--set", "train.val_every=100"]
    if not (work / "runs" / name / "semantic.done").is_file():
        run(glocal + ["train", *common, "--stage", "semantic", "--overwrite",
                      "--set", f"train.steps_semantic={args.semantic_steps}"], work / f"{name}.semantic.log", args.threads)
        (work / "runs" / name / "semantic.done").touch()
    run(glocal + ["train", *common, "--stage", "generator", "--resume", "auto",
                  "--set", f"train.steps_generator={args.generator_steps}"], work / f"{name}.generator.log", args.threads)
    (work / "runs" / name / "generator.done").touch()
    return out


def evaluate(samples: list[dict], weights: Path, threads: int) -> np.ndarray:
    """``uint8 (N, 256, 176, 3)`` transfers of ``samples`` with ``weights`` under glocal transfer's defaults."""
    import torch

    from glocal_cli.infer.config import InferConfig
    from glocal_cli.infer.pipeline import GLocalPipeline

    torch.set_num_threads(threads)
    pipe = GLocalPipeline.from_pretrained(weights, "cpu", config=InferConfig(pose_frame="source", batch_size=16,
                                                                             workers=0))
    res = pipe.transfer_batch([s["source"] for s in samples], [s["target_pose"] for s in samples],
                              [s["source_pose"] for s in samples], paste_back=True)
    return np.stack(res)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", type=Path, default=None, help="weights to fine-tune (default: the default weights)")
    ap.add_argument("--config", type=Path, default=ROOT / "benchmarks" / "configs" / "finetune-real-128.yaml",
                    help="training config of the fine-tune (YAML)")
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "kfold-real")
    ap.add_argument("--semantic-steps", type=int, default=300)
    ap.add_argument("--generator-steps", type=int, default=300)
    ap.add_argument("--lr-factor", type=float, default=0.5, help="train.finetune_lr_factor")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per job")
    ap.add_argument("--parallel", type=int, default=2, help="folds trained at once")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--picture", type=Path, default=None)
    ap.add_argument("--export-all", type=Path, default=None,
                    help="also fine-tune on all 59 pairs and copy those weights here")
    args = ap.parse_args()
    root = shared_root()
    weights = (args.weights or default_weights_dir()).resolve()
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    raw = work / "raw"
    t0 = time.perf_counter()
    print(f"raw layout: {build_raw(root, raw)} photos under {raw}")
    pairs = sample_pairs(root)
    splits = write_folds(root, pairs, work, args.folds, args.seed)
    jobs = [(f"fold{k}", s) for k, s in enumerate(splits)] + ([("all", None)] if args.export_all else [])
    with ThreadPoolExecutor(max(1, args.parallel)) as pool:
        tuned = dict(zip([j[0] for j in jobs], pool.map(lambda j: fine_tune(j[0], j[1], raw, work, weights, args),
                                                        jobs)))
    train_s = time.perf_counter() - t0

    samples = load_samples(root)
    index = {(s["from"], s["to"]): i for i, s in enumerate(samples)}
    n = len(samples)
    ours = np.zeros((n, 256, 176, 3), np.uint8)
    before = np.zeros_like(ours)
    fold_of = np.full(n, -1)
    for k, split in enumerate(splits):
        held = [tuple(r.split(",")) for r in (split / "fashion-pairs-test.csv").read_text().split()[1:]]
        idx = [index[p] for p in held]
        fold_of[idx] = k
        sub = [samples[i] for i in idx]
        ours[idx] = evaluate(sub, tuned[f"fold{k}"], args.threads)
        before[idx] = evaluate(sub, weights, args.threads)
    assert (fold_of >= 0).all(), "every pair is held out by exactly one fold"
    target = np.stack([s["target"] for s in samples])
    rows = {"Deformable GAN (third column)": np.stack([s["baseline"] for s in samples]),
            "copy the source": np.stack([s["source"] for s in samples]),
            f"{weights.name} (not fine-tuned)": before,
            f"{weights.name} fine-tuned, k-fold": ours}
    report = {"pairs": n, "folds": args.folds, "seed": args.seed, "weights": str(weights),
              "semantic_steps": args.semantic_steps, "generator_steps": args.generator_steps,
              "lr_factor": args.lr_factor, "train_seconds": train_s, "fold_of_pair": fold_of.tolist(), "scores": {}}
    for label, pics in rows.items():
        ss, ps = clean_scores(pics, target)
        per_fold = [(float(ss[fold_of == k].mean()), float(ps[fold_of == k].mean())) for k in range(args.folds)]
        report["scores"][label] = {"ssim": float(ss.mean()), "psnr": float(ps.mean()), "per_fold": per_fold,
                                   "ssim_per_pair": ss.tolist(), "psnr_per_pair": ps.tolist()}
        print(f"{label:40s} SSIM {ss.mean():.4f}  PSNR {ps.mean():.2f} dB   per fold: "
              + ", ".join(f"{a:.3f}/{b:.2f}" for a, b in per_fold))
    if args.export_all:
        import shutil

        if args.export_all.exists():
            raise SystemExit(f"{args.export_all} exists: remove it first (nothing is overwritten)")
        shutil.copytree(tuned["all"], args.export_all)
        print(f"weights fine-tuned on all {n} pairs: {args.export_all} (never score them on these pairs)")
    if args.picture:
        cols = {"Deformable GAN": rows["Deformable GAN (third column)"], "not fine-tuned": before,
                "fine-tuned (k-fold)": ours}
        pic = results_picture(samples, cols, 0.5, 3)
        print(f"picture: {args.picture} ({save_small_png(pic, args.picture) / 1e6:.2f} MB)")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
