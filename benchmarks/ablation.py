"""The paper's ablation (Table 1: w/o FL, w/o GGR, w/o LST) on SynthPeople, with seeds and exact visibility.

One command prepares (or reuses) a SynthPeople dataset, trains the full model and the three ablations
with the same data, budget and schedule for every seed, evaluates each on the test split and writes
``ablation.json``, ``ablation.md`` (mean +- std over seeds) and ``ablation.png`` (the same test pairs
under each variant, the pairs whose targets are least visible in their sources)::

    nice -n 10 .venv/bin/python benchmarks/ablation.py --out runs/ablation          # the docs/results.md run
    .venv/bin/python benchmarks/ablation.py --out /tmp/abl --size 32x24 --config tiny \\
        --identities 6 --poses 3 --steps 2 --seeds 0 --variants full,wo_ggr         # a smoke run

**Shared stages.** The variants differ only where the paper's switches act: ``loss.semantic_loss``
(w/o FL: cross-entropy instead of focal) acts on the semantic stage; ``model.use_ggr`` and
``model.use_lst`` only build a different generator. The generator stage keeps the semantic and flow
networks frozen (``train.semantic_in_generator`` / ``train.flow_in_generator`` are ``frozen`` in the
presets used here; the script checks), so per seed the script trains the semantic stage twice (focal,
cross-entropy) and the flow stage once, and each variant's generator stage starts from those
networks (a weights folder with the semantic and flow components, ``train(..., weights=...)``). This
is exactly what training each variant from scratch would compute for those stages, at a fraction of
the CPU. The seed (``train.seed``) sets the initialisation and the data order of every stage.

**Resumable.** A finished run (``<out>/runs/<name>/ablation-done.json``) is skipped; an interrupted
one (Ctrl-C, a killed process) continues from its newest checkpoint through the trainer's own
``resume='auto'``; evaluations are cached per run (``ablation-eval.json``). Re-running with another
training plan (steps, config, batch) into the same ``--out`` is refused (use another folder).

**Metrics** (test split, every pair): SSIM and PSNR (the trainer's definitions, images on 0..255),
L1 over the image (on [-1, 1], as the trainer logs it), L1 on the target's person pixels that are
INVISIBLE in the source and on those that are visible (exact visibility from the surface maps,
pooled over every such pixel of the split), mIoU of the predicted target parsing against the exact
one, and FID when pytorch-fid's Inception weights are present (else reported as skipped).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import json
import math
import os
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Any

VARIANTS: dict[str, tuple[str, list[str]]] = {
    "full": ("full", []),
    "wo_fl": ("w/o FL", ["loss.semantic_loss=ce"]),
    "wo_ggr": ("w/o GGR", ["model.use_ggr=false"]),
    "wo_lst": ("w/o LST", ["model.use_lst=false"]),
}
"""Variant key -> (label, config overrides on top of the full model)."""

METRICS: tuple[tuple[str, str, str], ...] = (
    ("ssim", "SSIM", "up"),
    ("psnr", "PSNR", "up"),
    ("l1", "L1", "down"),
    ("l1_invisible", "L1 invisible", "down"),
    ("l1_visible", "L1 visible", "down"),
    ("miou", "mIoU", "up"),
    ("fid", "FID", "down"),
)
"""(key, column label, better direction) of the table."""

DIAGNOSTICS: tuple[tuple[str, str, str], ...] = (
    ("l1_absent", "L1 on classes absent from the source", "down"),
    ("l1_background", "L1 background", "down"),
    ("visibility_error", "m_vis error (person pixels)", "down"),
    ("visibility_mean_on_visible", "mean m_vis on visible", "up"),
    ("visibility_mean_on_invisible", "mean m_vis on invisible", "down"),
)
"""Extra columns that help explain the table (same summary, a second table)."""

DONE_FILE = "ablation-done.json"
EVAL_FILE = "ablation-eval.json"
PLAN_FILE = "plan.json"


def _say(text: str) -> None:
    print(f"[ablation {_dt.datetime.now().strftime('%H:%M:%S')}] {text}", flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/ablation", help="output folder (runs, evaluations, table, picture)")
    p.add_argument("--data", default="", help="SynthPeople folder (default data/synthpeople-<H>; prepared "
                                              "when it has no manifest.json, reused as it is otherwise)")
    p.add_argument("--size", default="64x44", help="frame HxW of the dataset (must suit --config's stride)")
    p.add_argument("--identities", type=int, default=160, help="SynthPeople identities when preparing")
    p.add_argument("--poses", type=int, default=8, help="poses per identity when preparing")
    p.add_argument("--config", default="synthetic-64", help="preset or YAML file of the full model")
    p.add_argument("--steps", type=int, default=0, help="steps of every stage (0: the per-stage defaults)")
    p.add_argument("--steps-semantic", type=int, default=0, help="semantic-stage steps (default 1000)")
    p.add_argument("--steps-flow", type=int, default=0, help="flow-stage steps (default 1500)")
    p.add_argument("--steps-generator", type=int, default=0, help="generator-stage steps (default 200)")
    p.add_argument("--batch", type=int, default=0, help="batch size (0: the preset's)")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (init and data order)")
    p.add_argument("--variants", default=",".join(VARIANTS), help=f"subset of {', '.join(VARIANTS)}")
    p.add_argument("--threads", type=int, default=1, help="torch threads (1 on a shared 2-core machine; "
                                                          "0: torch's default)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--val-every", type=int, default=0, help="validation interval (0: twice per stage)")
    p.add_argument("--ckpt-every", type=int, default=0, help="checkpoint interval (0: 4 per shortest stage)")
    p.add_argument("--picture-pairs", type=int, default=6, help="test pairs in the picture")
    p.add_argument("--eval-pairs", type=int, default=0, help="evaluate the first N test pairs (0: all)")
    p.add_argument("--set", action="append", default=[], help="extra config override for every run (repeatable)")
    args = p.parse_args(argv)
    h, w = (int(v) for v in args.size.lower().split("x"))
    args.frame = (h, w)
    if not args.data:
        args.data = f"data/synthpeople-{h}" if (h, w) == (64, 44) else f"data/synthpeople-{h}x{w}"
    args.seed_list = [int(s) for s in args.seeds.split(",") if s.strip() != ""]
    args.variant_list = [v.strip() for v in args.variants.split(",") if v.strip()]
    bad = [v for v in args.variant_list if v not in VARIANTS]
    if bad or not args.variant_list or not args.seed_list:
        p.error(f"--variants {args.variants!r} / --seeds {args.seeds!r}: variants from {', '.join(VARIANTS)}, "
                "at least one seed")
    defaults = {"semantic": 1000, "flow": 1500, "generator": 200}
    args.stage_steps = {s: (getattr(args, f"steps_{s}") or args.steps or d) for s, d in defaults.items()}
    return args


# ------------------------------------------------------------------------------------------ data


def ensure_dataset(args: argparse.Namespace) -> Any:
    """The prepared SynthPeople folder (rendered when it has no manifest), checked for the frame."""
    from glocal_cli.data.datasets import open_dataset
    from glocal_cli.synth.dataset import prepare_synthetic

    data = Path(args.data)
    if not (data / "manifest.json").is_file():
        _say(f"preparing SynthPeople {args.size} in {data} ({args.identities} identities x {args.poses} poses)")
        prepare_synthetic(data, identities=args.identities, poses_per_identity=args.poses, size=args.frame, seed=0,
                          workers=1, show_progress=False, test_fraction=0.1)
    ds = open_dataset(data)
    if (ds.height, ds.width) != args.frame:
        raise SystemExit(f"{data / 'manifest.json'}: the dataset is {ds.height}x{ds.width}, --size says {args.size}")
    if not (ds.has_parsing and ds.has_surface):
        raise SystemExit(f"{data}: not a SynthPeople folder (needs parsing and surface maps for exact visibility)")
    return ds


# -------------------------------------------------------------------------------------- training


def base_config(args: argparse.Namespace, out: Path) -> Path:
    """The full model's config file: the preset, the demo's CPU loss settings, this study's schedule."""
    import yaml

    from glocal_cli.config import resolve_config, to_dict

    steps = args.stage_steps
    longest = max(steps.values())
    val_every = args.val_every or max(1, max(steps["semantic"], steps["generator"]) // 2)
    ckpt_every = args.ckpt_every or max(1, min(steps.values()) // 4)
    sets = [
        f"data.height={args.frame[0]}", f"data.width={args.frame[1]}", "data.workers=0",
        # no VGG-19 weights can be downloaded here: a fixed random VGG-19 with three cheap layers (the demo's
        # recipe, scripts/train_demo_weights.sh); the same for every variant and seed
        "loss.allow_random_vgg=true", "loss.vgg_download=false",
        "loss.perceptual_layers=[relu1_1, relu2_1, relu3_1]", "loss.perceptual_layer_weights=[1.0, 1.0, 1.0]",
        f"train.steps_semantic={steps['semantic']}", f"train.steps_flow={steps['flow']}",
        f"train.steps_generator={steps['generator']}", f"train.val_every={val_every}",
        f"train.ckpt_every={ckpt_every}", "train.keep_last=1", f"train.image_every={longest}",
        f"train.log_every={max(1, min(25, longest))}", "train.export_discriminator=false",
        *([f"train.batch_size={args.batch}"] if args.batch else []), *args.set,
    ]
    cfg = resolve_config(args.config, sets)
    t = cfg.train
    if t.semantic_in_generator != "frozen" or t.flow_in_generator != "frozen":
        raise SystemExit("the shared-stage plan needs train.semantic_in_generator and train.flow_in_generator "
                         "'frozen' (the generator stage then leaves the semantic and flow networks as trained)")
    path = out / "config.yaml"
    text = yaml.safe_dump(to_dict(cfg), sort_keys=False)
    # what decides the trained weights (other sections, e.g. infer or body, may grow without changing them)
    sections = ("data", "model", "loss", "train")
    full = to_dict(cfg)
    plan = {"config": {k: full[k] for k in sections}, "data": str(Path(args.data).resolve()), "preset": args.config}
    plan_path = out / PLAN_FILE
    if plan_path.is_file():
        old = json.loads(plan_path.read_text())
        old["config"] = {k: old.get("config", {}).get(k) for k in sections}
        if old != json.loads(json.dumps(plan)):
            raise SystemExit(f"{plan_path}: {out} holds runs of another training plan (steps, config, data or "
                             "batch differ); use another --out")
    else:
        out.mkdir(parents=True, exist_ok=True)
        plan_path.write_text(json.dumps(plan, indent=2) + "\n")
    path.write_text("# the full model of benchmarks/ablation.py (variants add their overrides)\n" + text)
    return path


def _run_training(out: Path, name: str, config: Path, data: Path, args: argparse.Namespace, stage: str,
                  overrides: list[str], seed: int, weights: Path | None = None) -> Path:
    """Train ``name`` unless it is finished; resume it when it was interrupted. Returns the run folder."""
    from glocal_cli.train.trainer import train

    run = out / "runs" / name
    done = run / DONE_FILE
    if done.is_file() and (run / "weights" / "config.json").is_file():
        _say(f"{name}: finished earlier, skipped")
        return run
    (run / EVAL_FILE).unlink(missing_ok=True)
    resume = "auto" if (run / "checkpoints").is_dir() and any((run / "checkpoints").rglob("*.pt")) else None
    _say(f"{name}: {'resuming' if resume else 'training'} ({stage}, seed {seed}, overrides {overrides or 'none'})")
    t0 = time.perf_counter()
    result = train(data, config, overrides, stage=stage, runs_dir=out / "runs", name=name, resume=resume,
                   device=args.device, seed=seed, weights=weights, overwrite=resume is None)
    elapsed = time.perf_counter() - t0
    timing_path = run / "ablation-timing.json"
    timing = json.loads(timing_path.read_text()) if timing_path.is_file() else {"calls": []}
    timing["calls"].append({"elapsed_s": elapsed, "resumed": resume is not None,
                            "stages": [(r.stage, r.start_step, r.step, r.skipped) for r in result.stages]})
    timing_path.write_text(json.dumps(timing, indent=2) + "\n")
    if result.interrupted or result.weights_dir is None:
        _say(f"{name}: interrupted; run the same command again to continue")
        raise SystemExit(130)
    total = sum(c["elapsed_s"] for c in timing["calls"])
    done.write_text(json.dumps({"name": name, "stage": stage, "seed": seed, "overrides": overrides,
                                "train_wall_s": total, "calls": len(timing["calls"]),
                                "results": {r.stage: {"step": r.step, "best_score": r.best_score,
                                                      "images_per_second": r.images_per_second, **r.metrics}
                                            for r in result.stages}}, indent=2) + "\n")
    _say(f"{name}: done in {elapsed:.0f} s")
    return run


def stem_weights(out: Path, seed: int, semantic_run: Path, flow_run: Path, kind: str) -> Path:
    """A weights folder holding only the semantic network of ``semantic_run`` and the flow network of
    ``flow_run``: ``train(weights=...)`` loads exactly these components, the generator starts fresh."""
    folder = out / "stems" / f"s{seed}-{kind}"
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    shutil.copytree(semantic_run / "weights" / "semantic", tmp / "semantic")
    shutil.copytree(flow_run / "weights" / "flow", tmp / "flow")
    meta = json.loads((flow_run / "weights" / "config.json").read_text())
    meta["components"] = ["flow", "semantic"]
    (tmp / "config.json").write_text(json.dumps(meta, indent=2) + "\n")
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    return folder


def train_all(args: argparse.Namespace, out: Path, config: Path) -> dict[tuple[str, int], Path]:
    """Every run of the plan; returns ``{(variant, seed): generator run folder}``."""
    data = Path(args.data)
    runs: dict[tuple[str, int], Path] = {}
    for seed in args.seed_list:
        need_focal = any(v != "wo_fl" for v in args.variant_list)
        # semantic (focal) + flow: one run; the flow stage does not read the semantic network
        base_stages = ["train.stages=[semantic, flow]"]
        shared = _run_training(out, f"s{seed}-semantic-flow", config, data, args, "all", base_stages, seed)
        stems = {}
        if need_focal:
            stems["focal"] = stem_weights(out, seed, shared, shared, "focal")
        if "wo_fl" in args.variant_list:
            ce = _run_training(out, f"s{seed}-semantic-ce", config, data, args, "semantic",
                               VARIANTS["wo_fl"][1], seed)
            stems["ce"] = stem_weights(out, seed, ce, shared, "ce")
        for variant in args.variant_list:
            stem = stems["ce" if variant == "wo_fl" else "focal"]
            runs[(variant, seed)] = _run_training(out, f"s{seed}-{variant}", config, data, args, "generator",
                                                  VARIANTS[variant][1], seed, weights=stem)
    return runs


# ------------------------------------------------------------------------------------ evaluation


def test_loader(ds: Any, args: argparse.Namespace) -> Any:
    from glocal_cli.data.datasets import PairDataset, make_loader

    test = PairDataset(ds, "test", with_flow=True, limit=args.eval_pairs or None)
    return make_loader(test, None, 16, 0, False, drop_last=False)


def _masks(batch: dict[str, Any]) -> tuple[Any, Any]:
    """(invisible, visible) person pixels of the targets, ``(B, 1, H, W)`` bool, from the exact visibility."""
    body = (batch["target_labels"] > 0).unsqueeze(1)
    visible = batch["flow_valid"] > 0.5
    return body & ~visible, body & visible


def _absent(batch: dict[str, Any]) -> Any:
    """Target person pixels whose class the source does not show at all ``(B, 1, H, W)`` bool: the case
    GGR's graph exists for (w/o GGR such a region gets no style code)."""
    import torch

    k = 8
    src = batch["source_labels"].flatten(1)
    present = torch.zeros(src.shape[0], k, dtype=torch.bool, device=src.device)
    present.scatter_(1, src, True)
    tgt = batch["target_labels"]
    shown = present.gather(1, tgt.flatten(1)).view_as(tgt)
    return ((tgt > 0) & ~shown).unsqueeze(1)


class _Accumulator:
    """Sums of every metric over a pass of the test split (per image and per pixel)."""

    def __init__(self, num_classes: int) -> None:
        import torch

        self.n = 0
        self.sums = {"ssim": 0.0, "psnr": 0.0, "l1": 0.0}
        self.pix = {"invisible": [0.0, 0.0], "visible": [0.0, 0.0], "background": [0.0, 0.0],
                    "absent": [0.0, 0.0]}
        self.vis = {"wrong": 0.0, "person": 0.0, "on_visible": 0.0, "on_invisible": 0.0}
        self.k = num_classes
        self.confusion = torch.zeros(num_classes * num_classes, dtype=torch.int64)
        self.images: list[Any] = []
        self.reference: list[Any] = []

    def add(self, pred: Any, batch: dict[str, Any], parsing_pred: Any | None, keep_images: bool,
            visibility: Any | None = None) -> None:
        """One batch: ``pred`` images in [-1, 1], the predicted target parsing and the model's ``m_vis``."""
        import torch.nn.functional as F

        from glocal_cli.metrics.psnr import psnr
        from glocal_cli.metrics.ssim import ssim

        gt = batch["target_image"].float()
        pred = pred.float().clamp(-1, 1)
        p255, g255 = (pred + 1) * 127.5, (gt + 1) * 127.5
        self.sums["ssim"] += float(ssim(p255, g255, compile=False).sum())
        self.sums["psnr"] += float(psnr(p255, g255, compile=False).clamp(max=100.0).sum())
        err = (pred - gt).abs().mean(1, keepdim=True)  # (B, 1, H, W), on [-1, 1]
        self.sums["l1"] += float(err.mean(dim=(1, 2, 3)).sum())
        invisible, visible = _masks(batch)
        background = (batch["target_labels"] == 0).unsqueeze(1)
        absent = _absent(batch)
        for key, m in (("invisible", invisible), ("visible", visible), ("background", background),
                       ("absent", absent)):
            self.pix[key][0] += float((err * m).sum())
            self.pix[key][1] += float(m.sum())
        if visibility is not None:  # GGR's visible/occluded split against the exact one, on person pixels
            v = F.interpolate(visibility.float(), size=err.shape[-2:], mode="bilinear", align_corners=False)
            person = invisible | visible
            self.vis["wrong"] += float((((v > 0.5) != visible) & person).sum())
            self.vis["person"] += float(person.sum())
            self.vis["on_visible"] += float((v * visible).sum())
            self.vis["on_invisible"] += float((v * invisible).sum())
        if parsing_pred is not None:
            idx = batch["target_labels"].flatten() * self.k + parsing_pred.flatten()
            self.confusion += idx.bincount(minlength=self.k * self.k).cpu()
        self.n += gt.shape[0]
        if keep_images:
            self.images.append(((pred + 1) / 2).cpu())
            self.reference.append(((gt + 1) / 2).cpu())

    def result(self) -> dict[str, float]:
        res = {k: v / max(self.n, 1) for k, v in self.sums.items()}
        for key, (s, c) in self.pix.items():
            res[f"l1_{key}"] = s / c if c else float("nan")
            res[f"pixels_{key}"] = int(c)
        cm = self.confusion.view(self.k, self.k).double()
        if cm.sum() > 0:
            tp = cm.diag()
            union = cm.sum(0) + cm.sum(1) - tp
            present = union > 0
            res["miou"] = float((tp[present] / union[present]).mean())
            from glocal_cli.models.ggr import REGIONS

            res["iou_per_class"] = {REGIONS[c]: float(tp[c] / union[c]) for c in range(self.k) if present[c]}
            res["pixel_acc"] = float(tp.sum() / cm.sum())
        if self.vis["person"]:
            res["visibility_error"] = self.vis["wrong"] / self.vis["person"]
            res["visibility_mean_on_visible"] = self.vis["on_visible"] / max(self.pix["visible"][1], 1.0)
            res["visibility_mean_on_invisible"] = self.vis["on_invisible"] / max(self.pix["invisible"][1], 1.0)
        res["pairs"] = self.n
        return res


def _fid(acc: _Accumulator, device: Any) -> tuple[float | None, str]:
    """FID of the generated test images against the ground truth, or None and why it was skipped."""
    import torch

    from glocal_cli.errors import WeightsError
    from glocal_cli.metrics.fid import FeatureStats, FIDInceptionV3, find_inception_weights, frechet_distance

    try:
        path = find_inception_weights(None)
    except WeightsError as exc:
        return None, f"skipped: {exc}"
    net = FIDInceptionV3.from_file(path).to(device)
    stats = []
    with torch.no_grad():
        for images in (torch.cat(acc.images), torch.cat(acc.reference)):
            fs = FeatureStats()
            for chunk in images.split(32):
                fs.update(net(chunk.to(device))[0])
            stats.append(fs.mean_cov())
    return float(frechet_distance(*stats[0], *stats[1])), f"pytorch-fid Inception weights {path.name}"


def evaluate_run(run: Path, ds: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Metrics of one trained run on the test split (cached in ``<run>/ablation-eval.json``)."""
    import torch

    from glocal_cli.config import resolve_config
    from glocal_cli.data.datasets import batch_to_device
    from glocal_cli.models.generator import GLocalModel

    cache = run / EVAL_FILE
    if cache.is_file():
        return json.loads(cache.read_text())
    device = torch.device(args.device)
    cfg = resolve_config(run / "config.yaml")
    model = GLocalModel.from_pretrained(run / "weights", map_location=device).eval()
    acc = _Accumulator(cfg.data.num_classes)
    warped = _Accumulator(cfg.data.num_classes)  # the source warped by the model's own flow, no generator
    t0 = time.perf_counter()
    with torch.no_grad():
        for raw in test_loader(ds, args):
            batch = batch_to_device(raw, device, cfg.data.scaled_sigma, cfg.data.height, cfg.data.width)
            out = model(batch["source_image"], batch["source_pose"], batch["target_pose"], batch["source_parsing"],
                        None, mode="transfer", check_finite=False)
            acc.add(out.image, batch, out.target_parsing_logits.argmax(1), keep_images=True,
                    visibility=out.visibility)
            warped.add(out.warped_source, batch, None, keep_images=False)
    res = acc.result()
    res["warped_source"] = {k: v for k, v in warped.result().items() if not k.startswith("pixels")}
    fid, note = _fid(acc, device)
    res["fid"] = fid
    res["fid_note"] = note
    res["eval_s"] = time.perf_counter() - t0
    cache.write_text(json.dumps(res, indent=2) + "\n")
    return res


def baseline_copy(ds: Any, args: argparse.Namespace) -> dict[str, Any]:
    """The copy-the-source answer (the source image as the prediction): the floor every model must beat."""
    import torch

    acc = _Accumulator(8)
    with torch.no_grad():
        for raw in test_loader(ds, args):
            acc.add(raw["source_image"], raw, None, keep_images=False)
    return acc.result()


# ------------------------------------------------------------------------------------- the report


def _stats(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value)."""
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return mean, std


def summarise(per_run: dict[tuple[str, int], dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    """Mean +- std over seeds per variant, and each variant's difference to the full model.

    ``exceeds_spread``: |mean difference| > std(full) + std(variant) (the mean +- std intervals do not
    overlap). ``same_sign``: the per-seed differences (same seed = same initialisation of the shared
    networks and the same data order) all have one sign. Both are None with a single seed.
    """
    summary: dict[str, Any] = {}
    for variant in args.variant_list:
        row: dict[str, Any] = {}
        for key, _, _ in (*METRICS, *DIAGNOSTICS):
            vals = [per_run[(variant, s)].get(key) for s in args.seed_list]
            if any(v is None or not math.isfinite(v) for v in vals):
                continue
            mean, std = _stats(vals)
            row[key] = {"mean": mean, "std": std, "per_seed": vals}
        summary[variant] = row
    if "full" in summary:
        for variant in args.variant_list:
            if variant == "full":
                continue
            for key, entry in summary[variant].items():
                ref = summary["full"].get(key)
                if ref is None:
                    continue
                diffs = [a - b for a, b in zip(entry["per_seed"], ref["per_seed"])]
                dmean, dstd = _stats(diffs)
                entry["diff_vs_full"] = {
                    "mean": dmean, "std": dstd, "per_seed": diffs,
                    # one seed has no spread to compare with: no verdict
                    "exceeds_spread": abs(dmean) > entry["std"] + ref["std"] if len(diffs) > 1 else None,
                    "same_sign": (all(d > 0 for d in diffs) or all(d < 0 for d in diffs)) if len(diffs) > 1 else None,
                }
    return summary


def warped_source_summary(per_run: dict[tuple[str, int], dict[str, Any]],
                          args: argparse.Namespace) -> dict[str, tuple[float, float]]:
    """Mean and std over seeds of the source warped by each seed's (shared, frozen) flow: what copying
    alone scores, the reference the generator's texture path starts from."""
    first = args.variant_list[0]
    out: dict[str, tuple[float, float]] = {}
    for key in ("ssim", "psnr", "l1", "l1_invisible", "l1_visible"):
        vals = [per_run[(first, s)].get("warped_source", {}).get(key) for s in args.seed_list]
        if all(isinstance(v, float) and math.isfinite(v) for v in vals):
            out[key] = _stats(vals)
    return out


def _fmt(key: str, mean: float, std: float) -> str:
    digits = 2 if key in ("psnr", "fid") else 4
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def markdown(report: dict[str, Any], args: argparse.Namespace) -> str:
    summary = report["summary"]
    keys = [m for m in METRICS if any(m[0] in summary[v] for v in summary)]
    head = "| variant | " + " | ".join(f"{label} {'↑' if d == 'up' else '↓'}" for _, label, d in keys) + " |"
    lines = [head, "|" + " --- |" * (len(keys) + 1)]
    for variant in args.variant_list:
        cells = []
        for key, _, _ in keys:
            e = summary[variant].get(key)
            cells.append(_fmt(key, e["mean"], e["std"]) if e else "n/a")
        lines.append(f"| {VARIANTS[variant][0]} | " + " | ".join(cells) + " |")
    base = report["baseline_copy"]
    cells = [f"{base[k]:.{2 if k in ('psnr', 'fid') else 4}f}" if isinstance(base.get(k), float)
             and math.isfinite(base[k]) else "–" for k, _, _ in keys]
    lines.append("| copy the source (no model) | " + " | ".join(cells) + " |")
    warp = report.get("warped_source")
    if warp:
        cells = [_fmt(k, *warp[k]) if k in warp else "–" for k, _, _ in keys]
        lines.append("| warped source (the seed's flow, no generator) | " + " | ".join(cells) + " |")
    if "full" in summary and len(args.variant_list) > 1:
        lines += ["", "Difference to the full model, per seed then mean ± std over seeds (variant − full; "
                  "**bold**: |mean| > std(full) + std(variant), the seed spread; †: same sign on every seed):", "",
                  "| variant | " + " | ".join(label for _, label, _ in keys) + " |",
                  "|" + " --- |" * (len(keys) + 1)]
        for variant in args.variant_list:
            if variant == "full":
                continue
            cells = []
            for key, _, _ in keys:
                d = summary[variant].get(key, {}).get("diff_vs_full")
                if d is None:
                    cells.append("n/a")
                    continue
                text = f"{d['mean']:+.4f} ± {d['std']:.4f}" if key not in ("psnr", "fid") else \
                    f"{d['mean']:+.2f} ± {d['std']:.2f}"
                text = f"**{text}**" if d["exceeds_spread"] else text
                cells.append(text + (" †" if d["same_sign"] else ""))
            lines.append(f"| {VARIANTS[variant][0]} | " + " | ".join(cells) + " |")
    diag = [m for m in DIAGNOSTICS if any(m[0] in summary[v] for v in summary)]
    if diag:
        lines += ["", "Diagnostics (mean ± std over seeds):", "",
                  "| variant | " + " | ".join(f"{label} {'↑' if d == 'up' else '↓'}" for _, label, d in diag) + " |",
                  "|" + " --- |" * (len(diag) + 1)]
        for variant in args.variant_list:
            cells = [_fmt(k, summary[variant][k]["mean"], summary[variant][k]["std"]) if k in summary[variant]
                     else "n/a" for k, _, _ in diag]
            lines.append(f"| {VARIANTS[variant][0]} | " + " | ".join(cells) + " |")
    lines += ["", f"FID: {report['fid_note']}.", "",
              f"SynthPeople {args.size}, {report['test_pairs']} test pairs ({report['pixels_invisible']} "
              f"invisible and {report['pixels_visible']} visible person pixels, {report['pixels_absent']} of a class "
              f"absent from the source); seeds {args.seeds}; steps "
              f"semantic {args.stage_steps['semantic']}, flow {args.stage_steps['flow']}, generator "
              f"{args.stage_steps['generator']} at batch {report['batch_size']}; training wall time "
              f"{report['train_wall_total_s'] / 60:.1f} min (all runs), this call {report['wall_s'] / 60:.1f} min "
              f"({report['hardware']})."]
    return "\n".join(lines) + "\n"


def picture(runs: dict[tuple[str, int], Path], ds: Any, args: argparse.Namespace, path: Path) -> list[str]:
    """The same test pairs (least visible targets, one per person first) under each variant of the first seed:
    source | target | invisible pixels (red) | one column per variant. Returns the pairs shown."""
    import numpy as np
    import torch
    from PIL import Image, ImageDraw, ImageFont

    from glocal_cli.config import resolve_config
    from glocal_cli.data.datasets import PairDataset, batch_to_device
    from glocal_cli.models.generator import GLocalModel

    test = PairDataset(ds, "test", with_flow=True, limit=args.eval_pairs or None)
    counts = []
    for i in range(len(test)):
        item = test[i]
        inv, _ = _masks({k: v.unsqueeze(0) for k, v in item.items()})
        counts.append((int(inv.sum()), i))
    ranked = [i for _, i in sorted(counts, key=lambda c: (-c[0], c[1]))]
    chosen, people = [], set()
    for i in ranked:  # one pair per person first, then the next least visible pairs
        person = test.pairs[i].target.rsplit("_", 1)[0]
        if person not in people and len(chosen) < args.picture_pairs:
            chosen.append(i)
            people.add(person)
    chosen += [i for i in ranked if i not in chosen][: args.picture_pairs - len(chosen)]
    from torch.utils.data import default_collate

    raw = default_collate([test[i] for i in chosen])
    seed = args.seed_list[0]
    columns: list[tuple[str, torch.Tensor]] = []
    with torch.no_grad():
        for variant in args.variant_list:
            run = runs[(variant, seed)]
            cfg = resolve_config(run / "config.yaml")
            batch = batch_to_device(raw, torch.device("cpu"), cfg.data.scaled_sigma, cfg.data.height, cfg.data.width)
            model = GLocalModel.from_pretrained(run / "weights").eval()
            out = model(batch["source_image"], batch["source_pose"], batch["target_pose"], batch["source_parsing"],
                        None, mode="transfer", check_finite=False)
            columns.append((VARIANTS[variant][0], (out.image.clamp(-1, 1) + 1) / 2))
    inv, _ = _masks(batch)
    target = (batch["target_image"] + 1) / 2
    red = torch.tensor([1.0, 0.1, 0.1]).view(1, 3, 1, 1)
    overlay = torch.where(inv, 0.4 * target + 0.6 * red, 0.5 * target + 0.5)
    columns = [("source", (batch["source_image"] + 1) / 2), ("target", target), ("invisible", overlay), *columns]
    scale, pad, head = 3, 4, 16
    h, w = args.frame[0] * scale, args.frame[1] * scale
    canvas = Image.new("RGB", (len(columns) * (w + pad) + pad, head + len(chosen) * (h + pad) + pad), "white")
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    for c, (label, images) in enumerate(columns):
        x = pad + c * (w + pad)
        draw.text((x + 2, 2), label, fill="black", font=font)
        for r in range(len(chosen)):
            arr = (images[r].permute(1, 2, 0).clamp(0, 1).numpy() * 255).round().astype(np.uint8)
            tile = Image.fromarray(arr).resize((w, h), Image.NEAREST)
            canvas.paste(tile, (x, head + pad + r * (h + pad)))
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path, optimize=True)
    invisible = {i: n for n, i in counts}
    return [f"{test.pairs[i].source} -> {test.pairs[i].target} ({invisible[i]} invisible px)" for i in chosen]


def hardware(args: argparse.Namespace) -> str:
    import torch

    if args.device.startswith("cuda"):
        return f"{torch.cuda.get_device_name(0)}"
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):  # no /proc (not Linux): the CPU model stays platform's answer
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return (f"CPU {model}, {os.cpu_count()} cores shared with other jobs, {torch.get_num_threads()} torch "
            f"thread(s), nice {os.nice(0)}, torch {torch.__version__}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads > 0:
        os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    load0 = os.getloadavg()
    ds = ensure_dataset(args)
    config = base_config(args, out)
    runs = train_all(args, out, config)
    per_run: dict[tuple[str, int], dict[str, Any]] = {}
    for (variant, seed), run in runs.items():
        per_run[(variant, seed)] = evaluate_run(run, ds, args)
        r = per_run[(variant, seed)]
        _say(f"{run.name}: SSIM {r['ssim']:.4f} L1 {r['l1']:.4f} L1 invisible {r['l1_invisible']:.4f} "
             f"L1 visible {r['l1_visible']:.4f} mIoU {r.get('miou', float('nan')):.4f}")
    base = baseline_copy(ds, args)
    pairs = picture(runs, ds, args, out / "ablation.png")
    first = next(iter(per_run.values()))
    train_wall = {run.name: json.loads((run / DONE_FILE).read_text())["train_wall_s"]
                  for run in sorted({p for p in (out / "runs").iterdir() if (p / DONE_FILE).is_file()})}
    report = {
        "command": " ".join([sys.executable, *sys.argv]) if argv is None else " ".join(["ablation.py", *argv]),
        "date": _dt.datetime.now().isoformat(timespec="seconds"),
        "data": str(args.data), "size": args.size, "seeds": args.seed_list, "variants": args.variant_list,
        "steps": args.stage_steps, "batch_size": resolve_batch(config),
        "shared": ("per seed: one run trains the semantic stage (focal) then the flow stage; one more trains the "
                   "semantic stage with cross-entropy (w/o FL); every variant's generator stage starts from "
                   "these (frozen) semantic and flow networks"),
        "test_pairs": first["pairs"], "pixels_invisible": first["pixels_invisible"],
        "pixels_visible": first["pixels_visible"], "pixels_absent": first.get("pixels_absent"),
        "fid_note": first["fid_note"], "hardware": hardware(args), "load_average_start": load0,
        "load_average_end": os.getloadavg(), "wall_s": time.perf_counter() - t0,
        "train_wall_s": train_wall, "train_wall_total_s": sum(train_wall.values()),
        "per_run": {f"{v}/s{s}": r for (v, s), r in per_run.items()},
        "baseline_copy": base, "summary": summarise(per_run, args), "picture_pairs": pairs,
        "warped_source": warped_source_summary(per_run, args),
    }
    (out / "ablation.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "ablation.md").write_text(markdown(report, args))
    _say(f"wrote {out / 'ablation.json'}, {out / 'ablation.md'} and {out / 'ablation.png'} "
         f"({report['wall_s'] / 60:.1f} min this call, training {report['train_wall_total_s'] / 60:.1f} min in all)")
    print(markdown(report, args))
    return 0


def resolve_batch(config: Path) -> int:
    from glocal_cli.config import resolve_config

    return resolve_config(config).train.batch_size


if __name__ == "__main__":
    sys.exit(main())
