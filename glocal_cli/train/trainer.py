"""``glocal train``: staged, resumable, DDP-ready training with checkpoints, validation and logs.

:func:`train` is the one library entry point (the CLI's ``glocal train`` calls it). A run lives in
``<runs_dir>/<name>/``::

    config.yaml                    the resolved config
    data.json                      the dataset folder(s) trained on and the resolved mix weights
    train.log                      plain-text log (every log line, validation, checkpoint, warning)
    tensorboard/                   scalars <stage>/train/*, <stage>/val/* and <stage>/images
    checkpoints/<stage>/           step-*.pt (last K), best.pt, last.pt (full state, weights_only-loadable)
    results.json                   final validation metrics of every stage
    weights/                       the pose-transfer model (save_pretrained: config.json + safetensors),
                                   written after each completed semantic/flow/generator stage
    weights-inpaint/               the inpainting model (after the inpaint stage, which fine-tunes the
                                   generator on masked sources)

Stages run in the order semantic -> flow -> generator -> inpaint; each starts from the best
weights of the stage before it. ``resume='auto'`` continues every unfinished stage of the run
exactly where its latest checkpoint left it (bit-exact on CPU).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from glocal_cli.config import GLocalConfig, resolve_config, save_config, to_dict
from glocal_cli.data import atomic_write_text
from glocal_cli.data.datasets import PairDataset, PairSampler, batch_to_device, make_loader, open_dataset
from glocal_cli.data.layout import list_file, pairs_file, read_list, read_pairs_csv
from glocal_cli.data.mix import MixedPairDataset, MixedSampler, dataset_labels, mix_probabilities
from glocal_cli.errors import (
    ConfigError,
    DataError,
    InputError,
    OutputExistsError,
    TrainingError,
    WeightsError,
)
from glocal_cli.metrics.fid import FeatureStats, FIDInceptionV3, find_inception_weights, frechet_distance
from glocal_cli.metrics.psnr import psnr
from glocal_cli.metrics.ssim import ssim
from glocal_cli.models.discriminator import Discriminator
from glocal_cli.models.generator import GLocalModel
from glocal_cli.models.pretrained import load_component, read_weights_config
from glocal_cli.prepare.validation import VAL_SPLIT, carve_validation_split, write_validation_split
from glocal_cli.train.checkpoint import (
    CheckpointManager,
    capture_rng_state,
    load_checkpoint,
    restore_rng_state,
)
from glocal_cli.train.config import STAGES
from glocal_cli.train.distributed import (
    DistInfo,
    all_reduce_max,
    all_reduce_mean,
    barrier,
    broadcast_object,
    cleanup_distributed,
    init_distributed,
    no_sync,
    unwrap,
)
from glocal_cli.train.logging import RunLogger, format_losses
from glocal_cli.train.stages import Stage, StageContext, make_stage, untrained_semantic_message, visual_grid

__all__ = ["StageResult", "TrainResult", "train", "validate_images"]

CHECKPOINT_FORMAT = "glocal-train-checkpoint"
CHECKPOINT_VERSION = 1


@dataclass
class StageResult:
    """What one stage did."""

    stage: str
    """Stage name."""
    start_step: int
    """Step the stage (re)started at (0 for a fresh stage)."""
    step: int
    """Last completed optimiser step."""
    total_steps: int
    """Steps the stage was asked to run."""
    metrics: dict[str, float] = field(default_factory=dict)
    """Last validation metrics (``val/...``) and the copy-the-source baseline (``baseline/...``)."""
    initial_metrics: dict[str, float] = field(default_factory=dict)
    """Validation metrics before the first step of a fresh stage (``val/...``)."""
    best_score: float | None = None
    """Best validation score (lower is better; the stage's ``score_name``)."""
    images_per_second: float = 0.0
    """Training throughput of this process group (global batch x steps / s)."""
    skipped: bool = False
    """True when the stage was already complete in a resumed run."""
    interrupted: bool = False
    """True when Ctrl-C (SIGINT/SIGTERM) stopped the stage (state saved in last.pt)."""


@dataclass
class TrainResult:
    """What :func:`train` did."""

    run_dir: Path
    """The run folder."""
    stages: list[StageResult]
    """One entry per stage run (or skipped)."""
    weights_dir: Path | None = None
    """The exported pose-transfer model: ``<run>/weights`` after the last completed stage other than
    inpaint (None when no such stage completed in this call)."""
    interrupted: bool = False
    """True when the run stopped on Ctrl-C; ``--resume auto`` continues it."""
    inpaint_weights_dir: Path | None = None
    """The exported inpainting model, ``<run>/weights-inpaint`` (when the inpaint stage completed)."""


# ---------------------------------------------------------------------------------------- helpers


class _StopFlag:
    """SIGINT/SIGTERM -> stop after the current step (a second Ctrl-C aborts at once)."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopFlag:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.getsignal(sig)
                signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _precision(cfg: GLocalConfig, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for fp32."""
    p = cfg.train.precision
    if p == "fp32" or (p == "auto" and device.type != "cuda"):
        return None
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError("train.precision bf16: this GPU does not support bfloat16 (use fp32)")
    return torch.bfloat16


def _describe_schedule(sched: dict[str, Any]) -> str:
    """``'cosine over 100 steps (warm-up 10)'``."""
    warm = f" (warm-up {sched['warmup']})" if sched["warmup"] else ""
    return f"{sched['kind']} over {sched['total']} steps{warm}"


def _saved_schedule(state: dict[str, Any]) -> dict[str, Any]:
    """The learning-rate schedule a checkpoint was trained with (older checkpoints: from their config)."""
    if isinstance(state.get("schedule"), dict):
        return dict(state["schedule"])
    t = state.get("config", {}).get("train", {})
    return {"kind": str(t.get("lr_schedule", "constant")), "warmup": int(t.get("warmup_steps", 0)),
            "total": int(state.get("total_steps", 0))}


def _lr_lambda(total: int, warmup: int, schedule: str):  # noqa: ANN202
    def fn(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        if schedule == "constant" or total <= warmup:
            return 1.0
        progress = min(max((step - warmup) / max(total - warmup, 1), 0.0), 1.0)
        if schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        return 1.0 - progress

    return fn


def _resolve_run_name(cfg: GLocalConfig, config: str | Path | None, name: str | None) -> str:
    if name:
        return name
    if cfg.train.run_name:
        return cfg.train.run_name
    stem = Path(str(config)).stem if config else "default"
    return f"{stem}-{_dt.datetime.now().strftime('%Y%m%d-%H%M%S')}"


def _latest_run(runs_dir: Path) -> Path | None:
    runs = [p for p in runs_dir.iterdir() if (p / "checkpoints").is_dir()] if runs_dir.is_dir() else []
    return max(runs, key=lambda p: p.stat().st_mtime) if runs else None


def _oom_hint(batch_size: int, accum: int, device: torch.device) -> str:
    fit = max(1, batch_size // 2)
    if device.type == "cuda":
        try:
            total = torch.cuda.get_device_properties(device).total_memory
            peak = max(torch.cuda.max_memory_allocated(device), 1)
            fit = max(1, min(batch_size - 1, int(batch_size * 0.85 * total / peak)))
        except RuntimeError:  # device properties unavailable: keep the halved batch computed above
            pass
    new_accum = math.ceil(batch_size * accum / fit)
    return (f"CUDA out of memory with {batch_size} images per process: try --batch-size {fit} "
            f"--set train.grad_accum={new_accum} (about the same global batch), or --set train.precision=bf16")


def _ssim_psnr(pred01: torch.Tensor, gt01: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image SSIM and PSNR of ``(B, 3, H, W)`` images in [0, 1] (the metrics package's definitions,
    on the 0..255 scale)."""
    return ssim(pred01 * 255.0, gt01 * 255.0), psnr(pred01 * 255.0, gt01 * 255.0)


def validate_images(pred: torch.Tensor, gt: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-batch sums of L1 (on [-1, 1]), SSIM and PSNR (on [0, 1]) for ``(B, 3, H, W)`` images."""
    p01 = ((pred.float() + 1) / 2).clamp(0, 1)
    g01 = ((gt.float() + 1) / 2).clamp(0, 1)
    s, q = _ssim_psnr(p01, g01)
    return {
        "l1": (pred.float() - gt.float()).abs().mean(dim=(1, 2, 3)).sum(),
        "ssim": s.float().sum(),
        "psnr": q.float().sum(),
    }


_TRAINS = {"semantic": "semantic", "flow": "flow", "generator": "generator", "inpaint": "generator"}
"""The network each stage trains (the key of its provenance)."""


def _provenance(state: dict[str, Any]) -> dict[str, str]:
    """Where the networks of a checkpoint come from; checkpoints from before provenance was recorded
    are trusted (their runs predate the check)."""
    trained = state.get("trained")
    if isinstance(trained, dict):
        return {str(k): str(v) for k, v in trained.items()}
    return dict.fromkeys(("semantic", "flow", "generator"), "a checkpoint without provenance")


# ------------------------------------------------------------------------------------ the trainer


class _Trainer:
    def __init__(self, cfg: GLocalConfig, info: DistInfo, dataset: Any, run_dir: Path, logger: RunLogger,
                 max_steps: int | None, resume: bool, stop: _StopFlag, reschedule: bool = False,
                 validation: _Validation | None = None) -> None:
        """``dataset``: a prepared dataset (with its ``validation`` split), or the list of :class:`_Source` of a
        run on several datasets."""
        self.cfg, self.info, self.run_dir, self.log = cfg, info, run_dir, logger
        none = _Validation([], frozenset(), "validation: none")
        if isinstance(dataset, (list, tuple)):
            self.sources: list[_Source] = list(dataset)
        else:
            self.sources = [] if dataset is None else [_Source(dataset, "", validation or none)]
        self.max_steps, self.resume, self.stop = max_steps, resume, stop
        self.reschedule = reschedule
        self.trained: dict[str, str] = {}
        """Where the weights of each trained network come from (``{'semantic': 'the semantic stage ...'}``);
        saved in every checkpoint, so that no stage builds on a network that was never trained."""
        self.device = info.device
        self.amp_dtype = _precision(cfg, self.device)
        torch.manual_seed(cfg.train.seed)
        self.model = GLocalModel(cfg.model, cfg.data.height, cfg.data.width, cfg.data.num_classes).to(self.device)
        self.D = Discriminator(cfg.model).to(self.device)
        if cfg.train.sync_bn and info.distributed and self.device.type != "cuda":
            logger.warn(f"train.sync_bn skipped: torch's SyncBatchNorm needs CUDA, this run is on {self.device.type} "
                        "(each process keeps its own BatchNorm statistics)")
        elif cfg.train.sync_bn and info.distributed:
            self.model = nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
        if cfg.train.channels_last and self.device.type == "cuda":
            self.model = self.model.to(memory_format=torch.channels_last)
            self.D = self.D.to(memory_format=torch.channels_last)
        self.vgg_cache: dict[str, Any] = {}
        self.reported: set[str] = set()
        self._inception: nn.Module | None = None

    # -- small pieces

    def autocast(self):  # noqa: ANN201
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def _note(self, ctx: StageContext) -> None:
        for msg in ctx.messages:
            if msg not in self.reported:
                self.reported.add(msg)
                self.log.warn(msg)
        ctx.messages.clear()

    def total_steps(self, stage: str) -> int:
        steps = self.cfg.train.steps_for(stage)
        return min(steps, self.max_steps) if self.max_steps is not None else steps

    def _load_weights(self, state: dict[str, Any]) -> None:
        unwrap(self.model).load_state_dict(state["model"])
        if "discriminator" in state:
            unwrap(self.D).load_state_dict(state["discriminator"])
        self.trained = _provenance(state)

    def _init_from_previous(self, stage: str) -> str | None:
        """Load the best weights of the latest earlier stage that has checkpoints in this run."""
        for prev in reversed(STAGES[: STAGES.index(stage)]):
            src = CheckpointManager(self.run_dir, prev).weights_source()
            if src is not None:
                self._load_weights(load_checkpoint(src, self.device))
                return f"{prev} ({src.name})"
        return None

    # -- data

    @property
    def mixed(self) -> bool:
        """Whether the run trains on several datasets."""
        return len(self.sources) > 1

    def _context(self, used: Sequence[_Source]) -> StageContext:
        """What a stage knows of its data. Several datasets: what every one of them has (the items of a mixed
        batch carry the same keys), with ground-truth flow of either kind read as correspondence files (the
        surface maps then also give ``flow_body``)."""
        if len(used) == 1:
            ds = used[0].ds
            parsing, surface, corr = ds.has_parsing, ds.has_surface, ds.has_correspondence
        else:
            parsing = all(s.ds.has_parsing for s in used)
            surface = parsing and all(s.ds.has_surface for s in used)  # the static-backdrop term reads the labels
            corr = all(s.ds.has_surface or s.ds.has_correspondence for s in used)
        return StageContext(self.cfg, unwrap(self.model), unwrap(self.D), self.info, parsing, surface, self.autocast,
                            self.vgg_cache, semantic_origin=self.trained.get("semantic"),
                            dataset_root=str(used[0].ds.root), has_correspondence=corr)

    def _stage_sources(self, name: str) -> list[_Source]:
        """The datasets that stage ``name`` trains on: all of them, except (on several datasets) one that cannot
        serve the stage (its own check fails), which is left out with a warning; when none can, the first
        dataset's error is raised (the stage's usual error)."""
        if not self.mixed:
            return list(self.sources)
        used: list[_Source] = []
        refused: list[tuple[_Source, DataError]] = []
        for src in self.sources:
            try:
                make_stage(name, self._context([src])).check_data()
            except DataError as exc:
                refused.append((src, exc))
            else:
                used.append(src)
        if not used:
            raise refused[0][1]
        for src, exc in refused:
            self.log.warn(f"{name}: {src.ds.root} left out of this stage: {exc}")
        return used

    def _note_common_keys(self, stage: Stage, used: Sequence[_Source]) -> None:
        """Warn when a mixed stage does without something that only some of its datasets have."""
        if len(used) < 2:
            return
        parsed = [s.label for s in used if s.ds.has_parsing]
        if parsed and len(parsed) < len(used):
            rest = [s.label for s in used if not s.ds.has_parsing]
            self.log.warn(f"{stage.name}: the parsing maps of {', '.join(parsed)} are not used in this stage: "
                          f"{', '.join(rest)} has none, and the items of a mixed batch carry the same keys (the stage "
                          "trains as on data without parsing)")
        if not stage.dataset_options().get("with_flow"):
            gt = [s.label for s in used if make_stage(stage.name, self._context([s])).dataset_options().get("with_flow")]
            if gt:
                rest = [s.label for s in used if s.label not in gt]
                self.log.warn(f"{stage.name}: the ground-truth flow of {', '.join(gt)} is not used in this stage: "
                              f"{', '.join(rest)} has none (train.flow_supervision=supervised trains the flow stage "
                              "on the datasets with ground truth only)")

    def _mix_weights(self, used: Sequence[_Source], sizes: Sequence[int]) -> tuple[float, ...]:
        """The probabilities of drawing from each dataset of a stage (``data.mix_weights`` of the datasets it
        uses, renormalised; none given: the shares of the training pairs)."""
        given = self.cfg.data.mix_weights
        return mix_probabilities([given[s.index] for s in used] if given else [], sizes)

    def _loaders(self, stage: Stage, used: Sequence[_Source]) -> tuple[Any, Any, Any, list[tuple[str, Any]]]:
        """The training dataset, its sampler and loader, and a ``(label, loader)`` per validation split (rank 0;
        the label prefixes the metric names, '' on one dataset)."""
        t, d = self.cfg.train, self.cfg.data
        opts = stage.dataset_options()
        pin = d.pin_memory and self.device.type == "cuda"
        train_ds: Any
        sampler: Any
        if not self.mixed:
            src = used[0]
            train_ds = PairDataset(src.ds, "train", flip_prob=d.flip_prob, seed=t.seed,
                                   exclude=src.validation.names, **opts)
            sampler = PairSampler(len(train_ds), t.batch_size, self.info.world_size, self.info.rank, True, t.seed)
        else:
            opts = {**opts, "parsing": stage.ctx.has_parsing, "flow_body": not stage.ctx.has_surface}
            parts = [PairDataset(s.ds, "train", flip_prob=d.flip_prob, seed=t.seed, exclude=s.validation.names,
                                 **opts) for s in used]
            train_ds = MixedPairDataset(parts)
            weights = self._mix_weights(used, train_ds.sizes)
            sampler = MixedSampler(train_ds.sizes, weights, t.batch_size, self.info.world_size, self.info.rank,
                                   t.seed)
            mix = ", ".join(f"{s.label} {w:.3g} ({n} pairs)" for s, w, n in zip(used, weights, train_ds.sizes))
            self.log.message(f"{stage.name}: data mix {mix}")
        loader = make_loader(train_ds, sampler, t.batch_size, d.workers, pin)
        val_loaders: list[tuple[str, Any]] = []
        if t.val_pairs > 0 and self.info.is_main:
            for src in used:
                if src.validation.pairs:
                    val_ds = PairDataset(src.ds, "val", flip_prob=0.0, limit=t.val_pairs, seed=t.seed + 1,
                                         pairs=src.validation.pairs, **opts)
                    val_loaders.append((src.label, make_loader(val_ds, None, min(t.batch_size, len(val_ds)), 0, pin,
                                                               drop_last=False)))
        return train_ds, sampler, loader, val_loaders

    def _to_device(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        d = self.cfg.data
        return batch_to_device(batch, self.device, d.scaled_sigma, d.height, d.width, self.cfg.train.channels_last)

    # -- validation

    @torch.no_grad()
    def validate(self, stage: Stage, loader: Any, with_baseline: bool = False) -> dict[str, float]:
        rng = capture_rng_state()
        self.model.eval()
        self.D.eval()
        sums: dict[str, torch.Tensor] = {}
        n = 0
        confusion = None
        fid_pred: list[torch.Tensor] = []
        fid_gt: list[torch.Tensor] = []
        try:
            for raw in loader:
                batch = self._to_device(raw)
                out = stage.val_outputs(batch)
                b = batch["source_image"].shape[0]
                n += b
                parts: dict[str, torch.Tensor] = {}
                if "parsing_pred" in out:
                    k = self.cfg.data.num_classes
                    idx = out["parsing_gt"].flatten() * k + out["parsing_pred"].flatten()
                    cm = torch.bincount(idx, minlength=k * k).view(k, k)
                    confusion = cm if confusion is None else confusion + cm
                if "pred" in out:
                    parts.update(validate_images(out["pred"], out["gt"]))
                    if with_baseline:
                        for key, v in validate_images(out["copy"], out["gt"]).items():
                            parts[f"baseline_copy_{key}"] = v
                    if stage.name in ("generator", "inpaint") and self.cfg.train.val_fid:
                        fid_pred.append(out["pred"].float().cpu())
                        fid_gt.append(out["gt"].float().cpu())
                for key in ("epe_sum", "epe_count", "vis_err_sum", "vis_err_count", "visibility_mean",
                            "visibility_std"):
                    if key in out:
                        parts[key] = out[key]
                for key, v in parts.items():
                    sums[key] = sums.get(key, 0) + v.detach().float()
        finally:
            restore_rng_state(rng)
            stage.train_mode()
        metrics: dict[str, float] = {}
        values = {k: float(v) for k, v in sums.items()}
        prefix = "warp_" if stage.name == "flow" else ""
        for key, value in values.items():
            if key.startswith(("epe", "vis_err")) or not n:
                continue
            metrics[key if key.startswith(("baseline", "visibility")) else prefix + key] = value / n
        for ratio in ("epe", "vis_err"):  # over the pixels with ground truth; none -> no metric (not 0)
            if values.get(f"{ratio}_count", 0.0) > 0:
                name = "epe" if ratio == "epe" else "visibility_error"
                metrics[name] = values[f"{ratio}_sum"] / values[f"{ratio}_count"]
        if confusion is not None:
            cm = confusion.double()
            tp = cm.diag()
            union = cm.sum(0) + cm.sum(1) - tp
            present = union > 0
            metrics["pixel_acc"] = float(tp.sum() / cm.sum().clamp_min(1))
            metrics["miou"] = float((tp[present] / union[present]).mean()) if present.any() else 0.0
            metrics["parsing_error"] = 1.0 - metrics["miou"]
        if fid_pred:
            fid = self._fid(torch.cat(fid_pred), torch.cat(fid_gt))
            if fid is not None:
                metrics["fid"] = fid
        return metrics

    def _fid(self, pred: torch.Tensor, gt: torch.Tensor) -> float | None:
        """FID between generated and ground-truth validation images when the Inception weights are local."""
        if pred.shape[0] < 2:
            return None
        if self._inception is None:
            try:
                path = find_inception_weights(None)
            except WeightsError as exc:
                if "fid" not in self.reported:
                    self.reported.add("fid")
                    self.log.message(f"validation: FID skipped ({exc})")
                return None
            self._inception = FIDInceptionV3.from_file(path).to(self.device)
        stats = []
        for images in (pred, gt):
            fs = FeatureStats()
            for chunk in images.split(32):
                fs.update(self._inception(((chunk.to(self.device) + 1) / 2).clamp(0, 1))[0])
            stats.append(fs.mean_cov())
        return float(frechet_distance(*stats[0], *stats[1]))

    # -- the learning-rate schedule

    def _schedule(self, name: str, total: int, state: dict[str, Any] | None) -> dict[str, Any]:
        """The learning-rate schedule of this stage: a property of the run, saved in every checkpoint.

        A fresh stage plans ``train.lr_schedule`` over its ``total`` steps. A resumed stage keeps the
        schedule saved in its checkpoint, even when this call asks for another length (``--max-steps``,
        ``train.steps_*``) or another schedule, and says so; ``reschedule`` (``--reschedule``) replaces it
        by the requested one from the current step on.
        """
        t = self.cfg.train
        requested = {"kind": t.lr_schedule, "warmup": t.warmup_steps, "total": total}
        if state is None:
            return requested
        saved = _saved_schedule(state)
        same_curve = saved["kind"] == requested["kind"] == "constant" and saved["warmup"] == requested["warmup"]
        if saved == requested or same_curve:  # a constant rate does not depend on the length
            return saved
        if self.reschedule:
            self.log.message(f"{name}: learning-rate schedule replaced on request (--reschedule): "
                             f"{_describe_schedule(saved)} -> {_describe_schedule(requested)}; from step "
                             f"{state['step']} the rate follows the new curve")
            return requested
        note = (f"{name}: keeping the run's learning-rate schedule, {_describe_schedule(saved)} (saved in the "
                f"checkpoint); this call asks for {_describe_schedule(requested)}")
        if total > saved["total"] and saved["kind"] != "constant":
            note += (f"; steps after {saved['total']} run at the schedule's final rate (0 for "
                     f"{saved['kind']})")
        self.log.warn(note + "; pass --reschedule to apply the new schedule from here")
        return saved

    # -- one stage: prepare it, run the step loop with its hooks, report

    def run_stage(self, name: str) -> StageResult:
        """Train one stage (or skip it when a resumed run already completed it)."""
        total = self.total_steps(name)
        ckpt = _CheckpointHook(self, CheckpointManager(self.run_dir, name, self.cfg.train.keep_last))
        state, skipped = ckpt.resume_state(name, total)
        if skipped is not None:
            return skipped
        run, val_loaders = self._prepare(name, total, ckpt, state)
        if run.step >= total:
            return run.result
        self.trained[_TRAINS[name]] = f"the {name} stage of run {self.run_dir.name}"
        self._loop(run, self._hooks(ckpt, val_loaders))
        return self._finish(run)

    def _hooks(self, ckpt: _CheckpointHook, val_loaders: Sequence[tuple[str, Any]]) -> list[_Hook]:
        """The hooks of a stage, in the order they run at every point of the loop (see :class:`_Hook`): the
        learning rate follows the step before anything reads it; the log line (and its non-finite check)
        comes before the stop decision, the validation and the checkpoint of the same step."""
        return [
            _ScheduleHook(),
            _LogHook(self),
            _StopHook(self),
            _ValidationHook(self, val_loaders, ckpt.save_best),
            ckpt,
        ]

    def _prepare(self, name: str, total: int, ckpt: _CheckpointHook,
                 state: dict[str, Any] | None) -> tuple[_StageRun, list[tuple[str, Any]]]:
        """The stage, its optimisers and schedulers, resumed from ``state`` (a checkpoint) or started fresh,
        and its data; returns the stage's run state and the ``(label, loader)`` of each validation split (none:
        no validation)."""
        t = self.cfg.train
        if state is None:
            torch.manual_seed(t.seed + STAGES.index(name))
            origin = self._init_from_previous(name)
            if origin:
                self.log.message(f"{name}: starting from the weights of stage {origin}")
            elif name in ("generator", "inpaint") and STAGES.index(name) > 0:
                self.log.message(f"{name}: no earlier stage in this run; starting from the current weights")
        used = self._stage_sources(name)
        ctx = self._context(used)
        stage = make_stage(name, ctx)
        stage.check_data()
        groups = stage.param_groups()
        self._note(ctx)
        fused = self.device.type == "cuda"
        opts = {
            key: torch.optim.AdamW(g, lr=t.lr, betas=(t.betas[0], t.betas[1]), weight_decay=t.weight_decay,
                                   fused=fused or None)
            for key, g in groups.items()
        }
        schedule = self._schedule(name, total, state)
        scheds = {key: torch.optim.lr_scheduler.LambdaLR(
                      o, _lr_lambda(schedule["total"], schedule["warmup"], schedule["kind"]))
                  for key, o in opts.items()}
        run = _StageRun(name, stage, total, opts, scheds, schedule, ckpt.mgr)
        if state is not None:
            ckpt.restore(run, state)
        stage.wrap()
        self._note_common_keys(stage, used)
        train_ds, sampler, loader, val_loaders = self._loaders(stage, used)
        if not val_loaders and self.info.is_main and t.val_pairs > 0 and not any(s.validation.pairs for s in used):
            self.log.warn("no validation split (see the 'validation:' line above): the last checkpoint is used "
                          "as the best")
        run.train_pairs = len(train_ds)
        run.stream = _batches(run, sampler, loader)
        run.window = _LossWindow(run.step)
        run.result = StageResult(name, run.step, run.step, total, best_score=run.best)
        return run, val_loaders

    def _loop(self, run: _StageRun, hooks: Sequence[_Hook]) -> None:
        """The step loop: the next batches, forward and losses (in the stage, under autocast), backward
        (``train.grad_accum`` micro-batches, DDP's all-reduce on the last one only), the optimiser step;
        everything else happens in the hooks."""
        t = self.cfg.train
        accum = t.grad_accum

        def backward(loss: torch.Tensor) -> None:
            (loss / accum).backward()

        for hook in hooks:
            hook.before_stage(run)
        run.stage.train_mode()
        try:
            while run.step < run.total and not run.stop_now:
                for hook in hooks:
                    hook.before_step(run)
                for o in run.opts.values():
                    o.zero_grad(set_to_none=True)
                step_losses: dict[str, torch.Tensor] = {}
                for micro in range(accum):
                    batch = self._to_device(next(run.stream))
                    with no_sync(run.stage.ddp_modules(), enabled=micro < accum - 1):
                        losses = run.stage.train_step(batch, backward)
                    for k, v in losses.items():
                        step_losses[k] = step_losses.get(k, 0) + v / accum
                if t.max_nan_skips > 0 and self._skip_nonfinite(run, step_losses):
                    continue
                if t.grad_clip > 0:
                    for o in run.opts.values():
                        params = [p for g in o.param_groups for p in g["params"] if p.grad is not None]
                        torch.nn.utils.clip_grad_norm_(params, t.grad_clip, foreach=True)
                for o in run.opts.values():
                    o.step()
                run.step += 1
                run.losses = step_losses
                for hook in hooks:
                    hook.after_step(run)
            run.outcome = "interrupted" if run.stop_now else "done"
        except torch.OutOfMemoryError as exc:
            hint = _oom_hint(t.batch_size, accum, self.device)
            raise TrainingError(f"{run.name} step {run.step + 1}: {hint}") from exc
        finally:
            if run.outcome == "running":  # an exception ends the loop
                run.outcome = "error"
            for hook in hooks:
                hook.after_stage(run)

    def _skip_nonfinite(self, run: _StageRun, step_losses: dict[str, torch.Tensor]) -> bool:
        """With ``train.max_nan_skips``: True (and a warning) when a loss of this step is not finite on any
        process, so that the update is skipped; stops the stage after too many skips."""
        t = self.cfg.train
        finite = torch.stack([torch.isfinite(v).all() for v in step_losses.values()]).all()
        if bool(all_reduce_max((~finite).float()) == 0):  # one host sync per step
            return False
        run.nan_skips += 1
        bad = [k for k, v in step_losses.items() if not bool(torch.isfinite(v).all())]
        self.log.warn(f"{run.name}: non-finite {', '.join(bad) or 'loss'} at step {run.step + 1}; "
                      f"update skipped ({run.nan_skips}/{t.max_nan_skips})")
        if run.nan_skips > t.max_nan_skips:
            _check_finite(run, {k: float("nan") for k in bad or ["total"]}, run.step, run.step + 1)
        return True

    def _finish(self, run: _StageRun) -> StageResult:
        """The stage's result and its closing log line."""
        result = run.result
        result.step, result.best_score = run.step, run.best
        if run.outcome == "interrupted":
            result.interrupted = True
            self.log.message(f"{run.name}: interrupted at step {run.step}/{run.total}; state saved to "
                             f"{run.last_path}; continue with --resume auto")
            return result
        best = run.best if run.best is not None else "n/a"
        self.log.message(f"{run.name}: done at step {run.step}; {result.images_per_second:.1f} images/s; "
                         f"best {run.stage.score_name} {best}")
        return result


# ---------------------------------------------------------------------------- a stage's shared state


@dataclass
class _StageRun:
    """What the step loop and the hooks of one stage share."""

    name: str
    stage: Stage
    total: int
    """The step the stage ends at."""
    opts: dict[str, torch.optim.Optimizer]
    scheds: dict[str, torch.optim.lr_scheduler.LRScheduler]
    schedule: dict[str, Any]
    """The learning-rate schedule (``kind``, ``warmup``, ``total``), saved in every checkpoint."""
    mgr: CheckpointManager
    step: int = 0
    """The last completed optimiser step."""
    epoch: int = 0
    position: int = 0
    """The data stream's resume point: the epoch, and the batches of it already drawn."""
    best: float | None = None
    """The best validation score so far (lower is better)."""
    losses: dict[str, torch.Tensor] = field(default_factory=dict)
    """The losses of the last step (on the device; the mean over its micro-batches)."""
    nan_skips: int = 0
    scaler: Any = None
    """A gradient scaler (none: bf16 needs none); its state is saved in the checkpoints."""
    stop_now: bool = False
    """Set by the stop hook: the loop ends after this step."""
    outcome: str = "running"
    """How the loop ended: ``done``, ``interrupted`` (stop request) or ``error``."""
    last_path: Path | None = None
    """The ``last.pt`` written when the loop ended (None on the other processes of a DDP run)."""
    train_pairs: int = 0
    stream: Iterator[dict[str, Any]] = field(init=False)
    """The training batches (see :func:`_batches`)."""
    window: _LossWindow = field(init=False)
    result: StageResult = field(init=False)


def _batches(run: _StageRun, sampler: PairSampler | MixedSampler, loader: Any) -> Iterator[dict[str, Any]]:
    """The endless stream of training batches from ``run.epoch``/``run.position`` on, kept up to date there
    (the resume point a checkpoint saves)."""
    while True:
        sampler.set_epoch(run.epoch)
        sampler.set_position(run.position)
        for b in loader:
            run.position += 1
            yield b
        run.epoch += 1
        run.position = 0


class _LossWindow:
    """The losses summed on the device since the last log line (no host sync per step)."""

    def __init__(self, step: int) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.steps = 0
        self.first = step
        """The step before the window's first step."""

    def add(self, losses: dict[str, torch.Tensor]) -> None:
        self.steps += 1
        for k, v in losses.items():
            self.sums[k] = self.sums.get(k, 0) + v

    def reduced(self, mean: bool) -> dict[str, float]:
        """The sums (or the means over the window's steps), averaged over the processes: a host sync."""
        keys = sorted(self.sums)
        stacked = torch.stack([self.sums[k].float() for k in keys])
        return dict(zip(keys, all_reduce_mean(stacked / self.steps if mean else stacked).tolist()))

    def reset(self, step: int) -> None:
        self.sums, self.steps, self.first = {}, 0, step


def _check_finite(run: _StageRun, values: dict[str, float], first: int, last: int) -> None:
    """Stop the stage on a non-finite loss of the steps ``first + 1 .. last``, naming the last good
    checkpoint."""
    bad = [k for k, v in values.items() if not math.isfinite(v)]
    if bad:
        good = run.mgr.latest()
        where = f"the last good checkpoint is {good}" if good else "no checkpoint was written yet"
        raise TrainingError(f"{run.name}: non-finite {', '.join(bad)} loss between steps {first + 1} and "
                            f"{last}; training stopped ({where})")


# ------------------------------------------------------------------------------------- the hooks


class _Hook:
    """One concern of a training stage around :meth:`_Trainer._loop`. The loop calls every hook of the
    stage's list, in list order, at each of these points; all get the stage's :class:`_StageRun`."""

    def before_stage(self, run: _StageRun) -> None:
        """Once, before the loop (a resumed stage starts at ``run.step`` > 0)."""

    def before_step(self, run: _StageRun) -> None:
        """Before each step's forward pass (also for a step whose update a non-finite loss skips)."""

    def after_step(self, run: _StageRun) -> None:
        """After each optimiser update: ``run.step`` is the step just completed, ``run.losses`` its losses."""

    def after_stage(self, run: _StageRun) -> None:
        """Once, when the loop has ended (``run.outcome``: ``done``, ``interrupted`` or ``error``; also
        after an exception, which then goes on)."""


class _ScheduleHook(_Hook):
    """The learning-rate schedulers follow the optimiser steps."""

    def after_step(self, run: _StageRun) -> None:
        for s in run.scheds.values():
            s.step()


class _LogHook(_Hook):
    """The progress bar; every ``train.log_every`` steps the losses averaged over the interval (the one host
    sync of the loop, which also stops the stage on a non-finite loss) to train.log and TensorBoard with the
    speed and the learning rate; the stage's throughput (``StageResult.images_per_second``)."""

    def __init__(self, trainer: _Trainer) -> None:
        self.tr = trainer
        self.t_start: float | None = None
        self.start_step = 0

    def _images_per_step(self) -> int:
        t = self.tr.cfg.train
        return t.batch_size * t.grad_accum * self.tr.info.world_size

    def before_stage(self, run: _StageRun) -> None:
        t, info = self.tr.cfg.train, self.tr.info
        self.tr.log.message(f"{run.name}: {run.total - run.step} steps, {run.train_pairs} training pairs, "
                            f"global batch {self._images_per_step()} ({info.world_size} x {t.grad_accum} x "
                            f"{t.batch_size}), device {self.tr.device}, precision "
                            f"{self.tr.amp_dtype or torch.float32}")

    def before_step(self, run: _StageRun) -> None:
        if self.t_start is None:  # the clocks start at the first step: the step-0 validation is not timed
            self.tr.log.start_stage(run.name, run.step, run.total)
            self.t_start, self.start_step = time.perf_counter(), run.step

    def after_step(self, run: _StageRun) -> None:
        log, step = self.tr.log, run.step
        run.window.add(run.losses)
        log.update(step)
        if step % self.tr.cfg.train.log_every != 0 and step != run.total:
            return
        values = run.window.reduced(mean=True)
        _check_finite(run, values, run.window.first, step)
        rate = log.rate(step)
        ips = rate * self._images_per_step()
        if self.tr.info.is_main:
            ordered = {"total": values.pop("total"), **values} if "total" in values else values
            log.update(step, ordered)
            log.message(f"{run.name} step {step}/{run.total} | {rate:.2f} it/s {ips:.1f} img/s | "
                        f"{format_losses(ordered, limit=12)}", console_too=False)
            log.scalars(step, ordered, f"{run.name}/train")
            lr = next(iter(run.opts.values())).param_groups[0]["lr"]
            log.scalars(step, {"images_per_second": ips, "lr": lr}, f"{run.name}/speed")
        run.window.reset(step)

    def after_stage(self, run: _StageRun) -> None:
        self.tr.log.end_stage()
        if run.outcome == "done" and self.t_start is not None:
            elapsed = max(time.perf_counter() - self.t_start, 1e-9)
            run.result.images_per_second = (run.step - self.start_step) * self._images_per_step() / elapsed


class _StopHook(_Hook):
    """Ctrl-C (SIGINT/SIGTERM, see :class:`_StopFlag`) ends the loop after the current step; every process
    of a DDP run stops at the same step (the flag is reduced at the log interval)."""

    def __init__(self, trainer: _Trainer) -> None:
        self.tr = trainer

    def after_step(self, run: _StageRun) -> None:
        tr = self.tr
        if not tr.info.distributed:
            run.stop_now = tr.stop.requested
        elif run.step % tr.cfg.train.log_every == 0 or run.step == run.total:
            flag = all_reduce_max(torch.tensor(float(tr.stop.requested), device=tr.device))
            run.stop_now = bool(flag.item() > 0)


def _metric_name(label: str, name: str) -> str:
    """``label/name`` (the metric ``name`` of the dataset ``label`` in a run on several datasets), or ``name``."""
    return f"{label}/{name}" if label else name


class _ValidationHook(_Hook):
    """Validation at step 0 of a fresh stage, every ``train.val_every`` steps and at the end (train.log,
    TensorBoard, ``<run>/validation.jsonl``; a better score saves best.pt), and the image grid of the first
    validation batch every ``train.image_every`` steps. Rank 0 only (the other ranks have no loader).

    On several datasets each validation split is scored on its own, its metric names prefixed by the
    dataset's label (``synth-64/l1``), and the score that selects ``best.pt`` is the first one's."""

    def __init__(self, trainer: _Trainer, loaders: Sequence[tuple[str, Any]],
                 save_best: Callable[[_StageRun], Any]) -> None:
        self.tr, self.loaders, self.save_best = trainer, list(loaders), save_best
        self.vis_batch: dict[str, Any] | None = None
        self.baseline_done = False
        """The copy-the-source baseline is computed once per call (at the first validation)."""

    def _report(self, run: _StageRun, step: int, metrics: dict[str, float]) -> None:
        log = self.tr.log
        text = " ".join(f"{k} {v:.4g}" for k, v in metrics.items())
        log.message(f"{run.name} validation at step {step}: {text}")
        log.scalars(step, metrics, f"{run.name}/val")
        log.validation(run.name, step, metrics)

    def _validate(self, run: _StageRun, with_baseline: bool) -> dict[str, float]:
        metrics: dict[str, float] = {}
        for label, loader in self.loaders:
            for key, value in self.tr.validate(run.stage, loader, with_baseline=with_baseline).items():
                metrics[_metric_name(label, key)] = value
        return metrics

    def before_stage(self, run: _StageRun) -> None:
        if not self.loaders:
            return
        self.vis_batch = next(iter(self.loaders[0][1]))
        if run.step == 0 and self.tr.cfg.train.val_every:
            metrics = self._validate(run, with_baseline=True)
            self.baseline_done = True
            run.result.initial_metrics = {f"val/{k}": v for k, v in metrics.items()}
            self._report(run, 0, metrics)

    def after_step(self, run: _StageRun) -> None:
        tr, t, step = self.tr, self.tr.cfg.train, run.step
        due = step % t.image_every == 0 or step == run.total
        if tr.info.is_main and self.vis_batch is not None and due:
            tr.model.eval()
            with torch.no_grad():
                grid = visual_grid(run.stage.visuals(tr._to_device(self.vis_batch)))
            run.stage.train_mode()
            tr.log.image(step, f"{run.name}/images", grid)
        if not self.loaders or not ((t.val_every and step % t.val_every == 0) or step == run.total):
            return
        metrics = self._validate(run, with_baseline=not self.baseline_done)
        self.baseline_done = True
        run.result.metrics.update({f"val/{k}": v for k, v in metrics.items()})
        score = metrics.get(_metric_name(self.loaders[0][0], run.stage.score_name))
        self._report(run, step, metrics)
        if score is not None and math.isfinite(score) and (run.best is None or score < run.best):
            run.best = score
            self.save_best(run)
        tr.log.flush()


class _CheckpointHook(_Hook):
    """Checkpoints and resume: ``step-*.pt`` every ``train.ckpt_every`` steps (never after a non-finite loss),
    ``best.pt`` (:meth:`save_best`, called by validation), ``last.pt`` when the loop ends (complete or
    stopped); at the end of a complete stage the best weights are loaded for the next stage. The state to
    resume from is read before the stage is built (:meth:`resume_state`) and restored into it
    (:meth:`restore`)."""

    def __init__(self, trainer: _Trainer, mgr: CheckpointManager) -> None:
        self.tr, self.mgr = trainer, mgr

    # -- resume

    def resume_state(self, name: str, total: int) -> tuple[dict[str, Any] | None, StageResult | None]:
        """With ``resume``: the latest checkpoint's state, or the result of a stage it shows complete (its
        best weights loaded)."""
        tr = self.tr
        latest = self.mgr.latest() if tr.resume else None
        if latest is None:
            return None, None
        state = load_checkpoint(latest, tr.device)
        tr.trained = _provenance(state)
        if state.get("stage") != name:
            raise TrainingError(f"{latest}: holds stage {state.get('stage')!r}, expected {name!r}")
        if int(state["step"]) < total:
            return state, None
        src = self.mgr.weights_source() or latest
        tr._load_weights(load_checkpoint(src, tr.device) if src != latest else state)
        tr.log.message(f"{name}: already complete at step {state['step']} ({src.name}); skipped")
        return state, StageResult(name, int(state["step"]), int(state["step"]), total, skipped=True,
                                  best_score=state.get("best_score"))

    def restore(self, run: _StageRun, state: dict[str, Any]) -> None:
        """Weights, optimisers, schedulers, the data position and the RNG of ``state``."""
        tr, t = self.tr, self.tr.cfg.train
        tr._load_weights(state)
        for key, o in run.opts.items():
            o.load_state_dict(state["optimizers"][key])
        for key, s in run.scheds.items():
            s.load_state_dict(state["schedulers"][key])
        run.step, run.epoch, run.position = int(state["step"]), int(state["epoch"]), int(state["position"])
        run.best = state.get("best_score")
        gb = t.batch_size * t.grad_accum * tr.info.world_size
        if int(state.get("global_batch", gb)) != gb:
            run.position = run.position * int(state["global_batch"]) // gb
            tr.log.warn(f"{run.name}: global batch changed ({state['global_batch']} -> {gb}); the data order "
                        "after the resume differs from an uninterrupted run")
        restore_rng_state(state["rng"])
        tr.log.message(f"{run.name}: resumed at step {run.step}/{run.total}")

    # -- saving

    def state(self, run: _StageRun, complete: bool) -> dict[str, Any]:
        """The full training state (weights_only-loadable)."""
        tr = self.tr
        return {
            "format": CHECKPOINT_FORMAT,
            "format_version": CHECKPOINT_VERSION,
            "stage": run.name,
            "step": run.step,
            "total_steps": run.total,
            "complete": complete,
            "epoch": run.epoch,
            "position": run.position,
            "global_batch": tr.cfg.train.batch_size * tr.cfg.train.grad_accum * tr.info.world_size,
            "world_size": tr.info.world_size,
            "best_score": run.best,
            "model": unwrap(tr.model).state_dict(),
            "discriminator": unwrap(tr.D).state_dict(),
            "optimizers": {k: o.state_dict() for k, o in run.opts.items()},
            "schedulers": {k: s.state_dict() for k, s in run.scheds.items()},
            "schedule": dict(run.schedule),
            "scaler": run.scaler.state_dict() if run.scaler is not None else {},
            "rng": capture_rng_state(),
            "config": to_dict(tr.cfg),
            "trained": dict(tr.trained),
        }

    def save_best(self, run: _StageRun) -> Path | None:
        return self.mgr.save_best(self.state(run, False)) if self.tr.info.is_main else None

    def after_step(self, run: _StageRun) -> None:
        if run.step % self.tr.cfg.train.ckpt_every != 0 or run.step >= run.total:
            return
        if run.window.sums:  # never checkpoint weights that a non-finite step may have touched
            _check_finite(run, run.window.reduced(mean=False), run.window.first, run.step)
        if self.tr.info.is_main:
            path = self.mgr.save_periodic(self.state(run, False), run.step)
            self.tr.log.message(f"{run.name}: checkpoint {path}", console_too=False)

    def after_stage(self, run: _StageRun) -> None:
        if run.outcome == "error":
            return
        complete = run.outcome == "done"
        if self.tr.info.is_main:
            run.last_path = self.mgr.save_last(self.state(run, complete))
        if not complete:
            return
        if self.tr.info.is_main and run.best is None and run.last_path is not None:
            self.mgr.copy_to_best(run.last_path)
        barrier()
        src = self.mgr.weights_source()
        if src is not None:
            self.tr._load_weights(load_checkpoint(src, self.tr.device))


# ------------------------------------------------------------------------------------- public API


def train(
    data: str | Path | Sequence[str | Path],
    config: str | Path | None = None,
    overrides: Sequence[str] = (),
    stage: str = "all",
    runs_dir: str | Path = "runs",
    name: str | None = None,
    resume: str | Path | None = None,
    device: str = "auto",
    workers: int | None = None,
    batch_size: int | None = None,
    seed: int | None = None,
    max_steps: int | None = None,
    overwrite: bool = False,
    weights: str | Path | None = None,
    reschedule: bool = False,
) -> TrainResult:
    """Train GLocal on a prepared dataset (or several at once); returns what was done and where.

    Args:
        data: a prepared dataset folder (``glocal prepare-data``), or a sequence of them: every batch then
            mixes items drawn from the datasets with ``data.mix_weights`` (see docs/training.md, "Training on
            several datasets"); they must share the frame.
        config: a preset name or YAML file; ``overrides``: ``--set a.b=c`` items.
        stage: ``semantic``, ``flow``, ``generator``, ``inpaint`` or ``all`` (``train.stages`` in order).
        runs_dir, name: the run folder is ``runs_dir/name`` (name default: ``train.run_name`` or
            ``<config>-<date>-<time>``).
        resume: ``'auto'`` (the run's latest checkpoints; with no ``name``, the newest run in
            ``runs_dir``) or a run folder / checkpoint file.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (under torchrun, ``cuda`` = ``cuda:LOCAL_RANK``).
        workers, batch_size, seed: shortcuts for ``data.workers``, ``train.batch_size``, ``train.seed``.
        max_steps: cap every stage at this many optimiser steps (smoke runs, budgets).
        overwrite: replace an existing run folder of the same name.
        weights: a weights folder to initialise every network from (fine-tuning).
        reschedule: on resume, replace the learning-rate schedule saved in the checkpoint by the one this
            call asks for (another ``max_steps``, ``train.steps_*``, ``train.lr_schedule`` or warm-up);
            by default the saved schedule is kept and the difference is reported.
    """
    if stage != "all" and stage not in STAGES:
        raise ConfigError(f"--stage {stage!r}: expected one of {', '.join(STAGES)} or all")
    if max_steps is not None and max_steps < 1:
        raise ConfigError(f"--max-steps {max_steps}: must be >= 1")
    info = init_distributed(device)
    try:
        return _train(info, data, config, overrides, stage, Path(runs_dir), name, resume, workers, batch_size,
                      seed, max_steps, overwrite, weights, reschedule)
    finally:
        cleanup_distributed()


def _user_frame_keys(overrides: Sequence[str]) -> set[str]:
    """The frame keys (``data.height``, ``data.width``) that ``--set`` items give explicitly."""
    keys = {item.split("=", 1)[0].strip() for item in overrides if "=" in item}
    return keys & {"data.height", "data.width"}


def _frame_from_dataset(cfg: GLocalConfig, ds: Any, source: str | Path | None,
                        overrides: Sequence[str]) -> tuple[GLocalConfig, str]:
    """The config with the dataset's frame, and a line saying which frame is used and why.

    The frame is a property of the prepared data (``manifest.json``), so it wins over a preset's or a
    config file's; only an explicit ``--set data.height=... / data.width=...`` is the user's choice,
    and then a dataset with another frame is refused (its images cannot be resized silently).
    """
    manifest = (ds.height, ds.width)
    current = (cfg.data.height, cfg.data.width)
    if _user_frame_keys(overrides):
        if current != manifest:
            raise DataError(
                f"{ds.root / 'manifest.json'}: images are {ds.height}x{ds.width} but --set asks for the frame "
                f"{current[0]}x{current[1]}; drop the --set data.height/data.width items to use the dataset's frame"
            )
        return cfg, f"frame {ds.height}x{ds.width} (--set, matches the dataset manifest)"
    if current == manifest:
        return cfg, f"frame {ds.height}x{ds.width} (from the dataset manifest)"
    stride = cfg.model.stride
    if ds.height % stride or ds.width % stride:
        raise ConfigError(
            f"{ds.root / 'manifest.json'}: the dataset's frame {ds.height}x{ds.width} is not a multiple of the "
            f"model's stride {stride} (2**model.num_downsample * model.lst_pool); use a config made for this frame "
            "or lower model.num_downsample"
        )
    cfg = resolve_config(source, [f"data.height={ds.height}", f"data.width={ds.width}", *overrides])
    said = f"the config said {current[0]}x{current[1]}"
    return cfg, f"frame {ds.height}x{ds.width} (from the dataset manifest; {said})"


def _check_semantic_before_generator(trainer: _Trainer, stages: Sequence[str], ds: Any, resuming: bool) -> None:
    """Refuse, before anything trains, a run whose generator stage would read target parsings from a
    semantic network that nothing trained (random maps). The stage checks again with the exact weights."""
    first = next((s for s in stages if s in ("generator", "inpaint")), None)
    if first is None or "semantic" in stages[: stages.index(first)] or trainer.cfg.train.allow_untrained_semantic:
        return
    if trainer.trained.get("semantic"):
        return  # --weights gave a semantic network
    candidates: list[Path] = []
    if resuming:
        own = CheckpointManager(trainer.run_dir, first).latest()
        if own is not None:
            candidates.append(own)
    for prev in reversed(STAGES[: STAGES.index(first)]):
        src = CheckpointManager(trainer.run_dir, prev).weights_source()
        if src is not None:
            candidates.append(src)
            break
    if candidates:
        state = torch.load(candidates[0], map_location="cpu", weights_only=True, mmap=True)
        if _provenance(state).get("semantic"):
            return
    raise DataError(untrained_semantic_message(first, ds.has_parsing, ds.root))


@dataclass
class _Validation:
    """The validation split of a run (pairs carved from the training people; see data/prepare/validation)."""

    pairs: list[tuple[str, str]]
    """Validation pairs (empty: no validation)."""
    names: frozenset[str]
    """Their images: training pairs that touch one are left out of training."""
    note: str
    """What was used, for the log."""


def _validation_split(ds: Any, fraction: float, run_dir: Path, is_main: bool) -> _Validation:
    """Read ``val.lst`` + ``pairs-val.csv`` of the dataset, or carve them from the training pairs and write
    them into the dataset folder (into the run folder when the dataset folder is read-only).

    Deterministic: every process of a DDP run computes the same split, only rank 0 writes.
    """
    lst, csv = ds.root / list_file(VAL_SPLIT), ds.root / pairs_file(VAL_SPLIT)
    if lst.is_file() and csv.is_file():
        try:
            names, pairs = read_list(lst), read_pairs_csv(csv)
        except InputError as exc:
            raise DataError(str(exc)) from None
        stray = sorted(set(names) - set(ds.names("train")))
        if stray:
            raise DataError(f"{lst}: {stray[0]!r} (and {len(stray) - 1} more) not in train.lst: the validation split "
                            f"is stale; delete {lst.name} and {csv.name} to carve a new one")
        outside = [n for pair in pairs for n in pair if n not in set(names)]
        if outside:
            raise DataError(f"{csv}: {outside[0]!r} is not in {lst.name}")
        return _Validation(pairs, frozenset(names), f"validation: {len(pairs)} pairs of {len(names)} images "
                                                    f"({csv})")
    if fraction <= 0:
        return _Validation([], frozenset(), "validation: none (train.val_fraction is 0)")
    split = carve_validation_split(ds.pairs("train"), fraction)
    if not split.pairs:
        return _Validation([], frozenset(), "validation: none (the training pairs hold fewer than two people)")
    where, why = ds.root, ""
    if is_main:
        try:
            write_validation_split(ds.root, split)
        except OSError as exc:  # a read-only dataset: keep the record with the run
            where, why = run_dir, f" (the dataset folder is not writable: {type(exc).__name__})"
            write_validation_split(run_dir, split)
    note = (f"validation: carved {split.people} of the training people ({len(split.pairs)} pairs, "
            f"train.val_fraction {fraction}) into {where / pairs_file(VAL_SPLIT)}{why}")
    return _Validation(split.pairs, frozenset(split.names), note)


def _resumed_run_dir(runs_dir: Path, name: str | None, resume: str | Path | None) -> Path | None:
    """The run folder that ``resume`` names (None: no resume, or ``auto`` with no run in ``runs_dir``)."""
    if resume is None:
        return None
    rp = Path(str(resume))
    if str(resume) == "auto":
        return runs_dir / name if name else _latest_run(runs_dir)
    if rp.is_file():
        return rp.parents[2] if rp.parent.parent.name == "checkpoints" else rp.parent
    if rp.is_dir():
        return rp
    raise ConfigError(f"--resume {resume}: expected 'auto', a run folder or a checkpoint file")


def _stages_to_train(cfg: GLocalConfig, datasets: Sequence[Any], stage: str) -> list[str]:
    """``stage``, or for ``all`` the configured stages these datasets and model can train (the semantic stage
    needs a dataset with parsing maps)."""
    stages = list(cfg.train.stages) if stage == "all" else [stage]
    if stage == "all" and "semantic" in stages and not any(ds.has_parsing for ds in datasets):
        stages.remove("semantic")
    if stage == "all" and "flow" in stages and cfg.model.flow == "none":
        stages.remove("flow")
    if not stages:
        raise ConfigError("train.stages leaves nothing to train on this dataset")
    return stages


@dataclass
class _Source:
    """One ``--data`` folder of a run."""

    ds: Any
    """The :class:`~glocal_cli.data.layout.PreparedDataset`."""
    label: str
    """Its name in metric names and log lines: the folder's name (made unique), '' on a run with one dataset."""
    validation: _Validation
    """Its validation split."""
    index: int = 0
    """Its place in ``--data`` order (its entry of ``data.mix_weights``)."""

    @property
    def train_pairs(self) -> int:
        """Training pairs (those touching a validation image left out)."""
        names = self.validation.names
        return sum(1 for a, b in self.ds.pairs("train") if a not in names and b not in names)


DATA_RECORD = "data.json"
"""The run's record of its dataset folders and mix weights (``<run>/data.json``)."""


def _data_folders(data: str | Path | Sequence[str | Path]) -> list[Path]:
    """The ``--data`` folders, in order: one folder or a sequence of them, each at most once."""
    items = [data] if isinstance(data, (str, os.PathLike)) else list(data)
    if not items:
        raise ConfigError("--data: no dataset folder given")
    seen: dict[Path, str] = {}
    for item in items:
        key = Path(item).resolve()
        if key in seen:
            raise ConfigError(f"--data {item}: the same dataset folder is given twice (as {seen[key]}); weight a "
                              "dataset with data.mix_weights instead")
        seen[key] = str(item)
    return [Path(item) for item in items]


def _check_mix(cfg: GLocalConfig, datasets: Sequence[Any]) -> None:
    """Several datasets share the first one's frame; ``data.mix_weights`` has one weight per dataset."""
    first = datasets[0]
    for ds in datasets[1:]:
        if (ds.height, ds.width) != (first.height, first.width):
            raise DataError(f"{ds.root / 'manifest.json'}: the frame is {ds.height}x{ds.width} but the first dataset's "
                            f"({first.root}) is {first.height}x{first.width}; every --data folder must have the same "
                            "frame (prepare it at that size)")
    weights = cfg.data.mix_weights
    if weights and len(weights) != len(datasets):
        raise ConfigError(f"data.mix_weights = {list(weights)}: {len(weights)} weight(s) for {len(datasets)} "
                          f"dataset(s) ({', '.join(str(ds.root) for ds in datasets)}); give one per --data folder, "
                          "in order, or none")


def _data_record(cfg: GLocalConfig, sources: Sequence[_Source]) -> dict[str, Any]:
    """What ``<run>/data.json`` holds: each dataset folder and the mix weights resolved over all of them."""
    sizes = [s.train_pairs for s in sources]
    weights = mix_probabilities(cfg.data.mix_weights, sizes) if all(sizes) else ()
    return {
        "datasets": [{"path": str(s.ds.root.resolve()), "label": s.label or s.ds.root.name, "kind": s.ds.kind,
                      "frame": [s.ds.height, s.ds.width], "has_parsing": s.ds.has_parsing,
                      "has_surface": s.ds.has_surface, "has_correspondence": s.ds.has_correspondence,
                      "train_pairs": n} for s, n in zip(sources, sizes)],
        "mix_weights": [round(w, 6) for w in weights],
        "mix_weights_from": "data.mix_weights" if cfg.data.mix_weights else "training pairs",
    }


def _read_data_record(run_dir: Path) -> dict[str, Any] | None:
    """``<run>/data.json`` (None: a run from before the record existed)."""
    path = run_dir / DATA_RECORD
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TrainingError(f"{path}: cannot read the run's data record ({type(exc).__name__})") from None
    if not isinstance(record, dict) or not isinstance(record.get("datasets"), list):
        raise TrainingError(f"{path}: not a data record (no 'datasets' list)")
    return record


def _check_resumed_data(run_dir: Path, folders: Sequence[Path]) -> None:
    """A resumed run goes on with the dataset folders it was started with, in the same order."""
    record = _read_data_record(run_dir)
    if record is None:
        return
    before = [str(d.get("path")) for d in record["datasets"] if isinstance(d, dict)]
    now = [str(f.resolve()) for f in folders]
    if before != now:
        raise ConfigError(f"--resume {run_dir}: the run trains on {', '.join(before)} ({run_dir / DATA_RECORD}) but "
                          f"this call gives --data {', '.join(now)}; resume with the same --data folders in the same "
                          "order, or start a new run (--name)")


def _open_run_dir(info: DistInfo, run_dir: Path, cfg: GLocalConfig, resuming: bool, overwrite: bool) -> None:
    """Create (or, with ``overwrite``, replace) the run folder and write its config.yaml (rank 0)."""
    if info.is_main:
        has_ckpt = (run_dir / "checkpoints").is_dir() and any((run_dir / "checkpoints").iterdir())
        if has_ckpt and not resuming:
            if not overwrite:
                raise OutputExistsError(f"{run_dir}: a run with this name exists; continue it with --resume "
                                        "auto or start over with --overwrite")
            import shutil

            shutil.rmtree(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(cfg, run_dir / "config.yaml")
    barrier()


def _init_from_weights(trainer: _Trainer, weights: str | Path) -> None:
    """``--weights``: every network that the weights folder holds."""
    _, meta = read_weights_config(weights)
    for comp in meta.get("components", []):
        target = {"semantic": trainer.model.semantic, "flow": trainer.model.flow,
                  "generator": trainer.model.generator, "discriminator": trainer.D}.get(comp)
        if target is not None:
            load_component(target, weights, comp)
            trainer.trained[comp] = f"weights {weights}"
    trainer.log.message(f"initialised from weights {weights}")


def _train_stages(trainer: _Trainer, stages: Sequence[str]) -> TrainResult:
    """Run the stages in order, exporting the weights after each complete one; results.json at the end."""
    cfg, run_dir, logger = trainer.cfg, trainer.run_dir, trainer.log
    results: list[StageResult] = []
    weights_dir: Path | None = None
    inpaint_dir: Path | None = None
    interrupted = False
    for name_ in stages:
        res = trainer.run_stage(name_)
        results.append(res)
        if res.interrupted:
            interrupted = True
            break
        if trainer.info.is_main:  # the transfer model, and the inpainting model beside it
            folder = run_dir / ("weights-inpaint" if name_ == "inpaint" else "weights")
            d = unwrap(trainer.D) if cfg.train.export_discriminator else None
            unwrap(trainer.model).save_pretrained(folder, discriminator=d, pose_sigma=cfg.data.pose_sigma)
            save_config(cfg, folder / "training-config.yaml")  # the whole resolved config, for the record
            logger.message(f"{name_}: weights exported to {folder}")
            if name_ == "inpaint":
                inpaint_dir = folder
            else:
                weights_dir = folder
    if trainer.info.is_main and results:
        summary = {r.stage: {"step": r.step, "best_score": r.best_score, "images_per_second":
                             r.images_per_second, **r.metrics} for r in results}
        (run_dir / "results.json").write_text(json.dumps(summary, indent=2) + "\n")
    return TrainResult(run_dir, results, weights_dir, interrupted, inpaint_dir)


def _train(info: DistInfo, data: str | Path, config: str | Path | None, overrides: Sequence[str], stage: str,
           runs_dir: Path, name: str | None, resume: str | Path | None, workers: int | None,
           batch_size: int | None, seed: int | None, max_steps: int | None, overwrite: bool,
           weights: str | Path | None, reschedule: bool = False) -> TrainResult:
    # -- where the run lives (resume may name it)
    resuming = resume is not None
    run_dir = _resumed_run_dir(runs_dir, name, resume)
    extra = list(overrides)
    if batch_size is not None:
        extra.append(f"train.batch_size={batch_size}")
    if workers is not None:
        extra.append(f"data.workers={workers}")
    if seed is not None:
        extra.append(f"train.seed={seed}")
    source: str | Path | None = config
    if resuming and config is None and run_dir is not None and (run_dir / "config.yaml").is_file():
        source = run_dir / "config.yaml"
    cfg = resolve_config(source, extra)
    if run_dir is None:
        run_dir = runs_dir / _resolve_run_name(cfg, config, name)
    run_dir = Path(broadcast_object(str(run_dir)))

    folders = _data_folders(data)
    if resuming:
        _check_resumed_data(run_dir, folders)
    datasets = [open_dataset(folder) for folder in folders]
    ds = datasets[0]
    cfg, frame_note = _frame_from_dataset(cfg, ds, source, extra)
    _check_mix(cfg, datasets)
    all_counts = [d.check(("train", "val", "test")) for d in datasets]
    for d, counts in zip(datasets, all_counts):
        if not counts.get("train"):
            raise DataError(f"{d.root / 'train.lst'}: no training images")
    stages = _stages_to_train(cfg, datasets, stage)
    _open_run_dir(info, run_dir, cfg, resuming, overwrite)
    logger = RunLogger(run_dir, enabled=info.is_main)
    labels = dataset_labels(folders) if len(datasets) > 1 else [""]
    try:
        sources = [_Source(d, label, _validation_split(d, cfg.train.val_fraction,
                                                       run_dir / "validation" / label if label else run_dir,
                                                       info.is_main), i)
                   for i, (d, label) in enumerate(zip(datasets, labels))]
        record = _data_record(cfg, sources)
        if info.is_main:
            previous = _read_data_record(run_dir) if resuming else None
            if previous is not None and previous.get("mix_weights") != record["mix_weights"]:
                logger.warn(f"the mix weights changed ({previous.get('mix_weights')} -> {record['mix_weights']}); the "
                            "data order after the resume differs from an uninterrupted run")
            atomic_write_text(run_dir / DATA_RECORD, json.dumps(record, indent=2) + "\n")
    except BaseException:
        logger.close()
        raise
    if len(sources) == 1:
        logger.message(f"run {run_dir} | data {ds.root} ({ds.kind}, {all_counts[0]}) | {frame_note} | stages "
                       f"{', '.join(stages)} | {info.world_size} process(es), backend {info.backend or 'none'}")
        logger.message(sources[0].validation.note)
    else:
        data_note = " + ".join(f"{s.ds.root} ({s.ds.kind}, {c})" for s, c in zip(sources, all_counts))
        logger.message(f"run {run_dir} | data {data_note} | {frame_note} | stages {', '.join(stages)} | "
                       f"{info.world_size} process(es), backend {info.backend or 'none'}")
        mix = ", ".join(f"{d['label']} {w:.3g}" for d, w in zip(record["datasets"], record["mix_weights"]))
        logger.message(f"data mix ({record['mix_weights_from']}): {mix}; each dataset is validated on its own, and "
                       "a stage's best checkpoint follows the first of its datasets with a validation split")
        for src in sources:
            logger.message(f"{src.label}: {src.validation.note}")
    try:
        with _StopFlag() as stop:
            trainer = _Trainer(cfg, info, sources, run_dir, logger, max_steps, resuming, stop, reschedule)
            if weights is not None:
                _init_from_weights(trainer, weights)
            parsed = next((d for d in datasets if d.has_parsing), ds)  # the folder the error's options are about
            _check_semantic_before_generator(trainer, stages, parsed, resuming)
            result = _train_stages(trainer, stages)
            barrier()
    finally:
        logger.close()
    return result
