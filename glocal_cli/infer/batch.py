"""Folder jobs for ``glocal transfer`` / ``glocal inpaint``: plan, load, run, write, resume, report.

* **Plan** (:func:`plan_tasks`): every source x every target pose, or the rows of a pairs CSV;
  one :class:`Task` per output. Tasks whose output exists are skipped unless ``overwrite`` (an
  interrupted run resumes). Under ``torchrun`` rank ``r`` of ``w`` takes tasks ``r, r + w, ...``.
* **Load**: a ``DataLoader`` over :class:`TaskDataset` with worker processes decodes images,
  reads poses/parsings/masks and fits them into the model frame while the model runs. A bad item
  becomes a failure record, never an exception.
* **Run**: :meth:`GLocalPipeline.forward_batch` per batch; writing the pictures runs in threads.
* **Report**: ``failures.csv`` (source, target, stage, error) in the output folder, and a
  :class:`BatchReport` the CLI shows as a summary table; the CLI exits non-zero if anything failed.
  Items that were produced with a caveat (a flagged 3D body fit: the learned flow was used instead)
  are rows of stage ``note`` in the same file, warned per item, and do not count as failures.
"""

from __future__ import annotations

import csv
import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from glocal_cli.console import debug, info, make_progress, warn
from glocal_cli.data import atomic_output
from glocal_cli.data.backends import BackendSpec, make_backend, require_detector
from glocal_cli.data.images import FrameTransform, fit_to_frame, load_image, resize_image, save_image
from glocal_cli.data.keypoints import (
    Pose,
    draw_skeleton,
    read_keypoint_csv,
    read_pose_file,
    read_pose_file_frame,
)
from glocal_cli.data.masks import irregular_mask, load_mask
from glocal_cli.data.parsing import colorize, read_parsing
from glocal_cli.errors import GLocalError, InputError
from glocal_cli.infer.body3d import preview_picture
from glocal_cli.infer.composite import DETAIL_KEYS, compose, mask_to_canvas
from glocal_cli.infer.config import InferConfig
from glocal_cli.infer.io import (
    PoseRef,
    PoseSource,
    PreparedSource,
    _csv_frame,
    check_out_dir,
    convert_csv_pose,
    find_sidecar,
    fit_transform_for_poses,
    limit_size,
    list_images,
    list_pose_sources,
    load_source_image,
    map_target_pose,
    match_downscale,
    pose_reference,
    prepare_source,
    read_pairs,
    safe_stem,
)
from glocal_cli.infer.prepare import ModelInput, frame_mask
from glocal_cli.infer.prepare import collate as collate_inputs
from glocal_cli.infer.video import FrameWriter

__all__ = ["BatchReport", "JobSpec", "Task", "TaskDataset", "collate", "plan_tasks", "run_job"]


@dataclass(frozen=True)
class JobSpec:
    """What the user asked for (the CLI options, as paths)."""

    mode: str
    """``transfer`` or ``inpaint``."""
    source: Path
    """A source image or a folder of them."""
    out: Path
    """Output folder."""
    pose: Path | None = None
    """Target pose JSON file, folder of JSON files, or keypoint CSV (transfer)."""
    pose_from: Path | None = None
    """A photo or folder of photos whose detected keypoints are the target poses (transfer)."""
    source_pose: Path | None = None
    """Source keypoints: a JSON file (one source), a folder of ``<stem>.json``, or a keypoint CSV."""
    source_parsing: Path | None = None
    """Source parsing: a label PNG (one source) or a folder of ``<stem>_parsing.png`` / ``<stem>.png``."""
    pairs: Path | None = None
    """A pairs CSV (``from,to``) instead of all combinations."""
    mask: str = "irregular"
    """Inpainting mask: ``irregular``, ``semantic``, a mask image, or a folder of ``<stem>.png`` masks."""
    video: Path | None = None
    """Also write the results of each source, in pose order, as an ``.mp4`` / ``.gif``."""
    overwrite: bool = False
    """Replace existing outputs."""


@dataclass(frozen=True)
class Task:
    """One output to produce (picklable: sent to the loader workers)."""

    index: int
    name: str
    source: Path
    target: PoseSource | None = None
    source_pose: PoseSource | None = None
    source_pose_frame: Any = None
    source_parsing: Path | None = None
    mask: str | Path | None = None
    fit: FrameTransform | None = None
    ref: PoseRef | None = None
    """``pose_frame: auto`` for a --video sequence without recorded frames: the sequence's box and size."""

    @property
    def target_label(self) -> str:
        if self.target is not None:
            return str(self.target.path if self.target.kind != "pose" else f"{self.target.path}:{self.target.name}")
        return str(self.mask or "")


@dataclass
class Failure:
    """One item that could not be produced."""

    source: str
    target: str
    stage: str
    error: str

    @classmethod
    def of(cls, task: Task, stage: str, error: str) -> Failure:
        """The failure of ``task`` at ``stage`` (``input``, ``model`` or ``write``; ``note`` for a caveat)."""
        return cls(str(task.source), task.target_label, stage, error)


@dataclass
class BatchReport:
    """Outcome of :func:`run_job` (shown as the summary table)."""

    total: int = 0
    done: int = 0
    skipped: int = 0
    failed: int = 0
    seconds: float = 0.0
    out: Path | None = None
    failures: list[Failure] = field(default_factory=list)
    notes: list[Failure] = field(default_factory=list)
    """Items produced with a caveat (stage ``note``: e.g. a flagged 3D body fit, learned flow used)."""
    videos: list[Path] = field(default_factory=list)
    warnings: int = 0
    rank: int = 0
    world: int = 1

    @property
    def images_per_s(self) -> float:
        return self.done / self.seconds if self.seconds > 0 else 0.0


# -------------------------------------------------------------------------------------------- plan


def _shard() -> tuple[int, int]:
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def _source_pose_lookup(spec: JobSpec, sources: list[Path], csv_frame: str = "auto"
                        ) -> tuple[dict[Path, PoseSource | None], Any]:
    """Each source's keypoints, and the frame of a keypoint CSV's coordinates (``infer.pose_csv_frame``:
    they are converted from it to each photo's pixels when the photo is loaded; ``None``: already pixels)."""
    out: dict[Path, PoseSource | None] = {}
    frame = None
    sp = spec.source_pose
    csv_poses: dict[str, Pose] = {}
    if sp is not None:
        if not sp.exists():
            raise InputError(f"{sp}: no such source-pose file or folder")
        if sp.is_file() and sp.suffix.lower() == ".csv":
            csv_poses = read_keypoint_csv(sp)
            frame = _csv_frame(sp, csv_frame)
    for src in sources:
        found: PoseSource | None = None
        if sp is not None and sp.is_file() and sp.suffix.lower() != ".csv":
            if len(sources) > 1:
                raise InputError(f"{sp}: one --source-pose file for {len(sources)} sources; pass a folder or a CSV")
            found = PoseSource("file", safe_stem(sp.name), path=sp)
        elif sp is not None and sp.is_dir():
            cand = sp / f"{src.stem}.json"
            found = PoseSource("file", src.stem, path=cand) if cand.is_file() else None
        elif csv_poses:
            pose = csv_poses.get(src.name, csv_poses.get(src.stem))
            found = PoseSource("pose", src.name, path=sp, pose=pose) if pose is not None else None
        if found is None:
            side = find_sidecar(src, "pose")
            found = PoseSource("file", src.stem, path=side) if side is not None else None
        out[src] = found
    return out, frame


def _first_file(*candidates: Path) -> Path | None:
    """The first of ``candidates`` that is a file, or ``None``."""
    return next((c for c in candidates if c.is_file()), None)


def _parsing_for(spec: JobSpec, src: Path, n_sources: int) -> Path | None:
    sp = spec.source_parsing
    if sp is not None:
        if sp.is_file():
            if n_sources > 1:
                raise InputError(f"{sp}: one --source-parsing file for {n_sources} sources; pass a folder")
            return sp
        if sp.is_dir():
            return _first_file(sp / f"{src.stem}_parsing.png", sp / f"{src.stem}.png")
        raise InputError(f"{sp}: no such parsing file or folder")
    return find_sidecar(src, "parsing")


def _mask_for(spec: JobSpec, src: Path, n_sources: int) -> str | Path:
    if spec.mask in ("irregular", "semantic"):
        return spec.mask
    m = Path(spec.mask)
    if m.is_dir():
        found = _first_file(m / f"{src.stem}.png", m / f"{src.stem}_mask.png")
        if found is not None:
            return found
        raise InputError(f"{m}: no mask for {src.name} ({src.stem}.png or {src.stem}_mask.png)")
    if m.is_file():
        return m
    if spec.mask == "file":
        side = find_sidecar(src, "mask")
        if side is None:
            raise InputError(f"{src}: no mask sidecar {src.stem}_mask.png")
        return side
    raise InputError(f"--mask {spec.mask}: not irregular, semantic, a mask image or a folder of masks")


def output_paths(out: Path, name: str, mode: str, cfg: InferConfig) -> dict[str, Path]:
    """Files written for one task: ``result`` always; ``masked`` (inpaint), ``grid``, ``parsing``, ``flow`` on request."""
    ext = "." + cfg.image_format
    paths = {"result": out / f"{name}{ext}"}
    if mode == "inpaint":
        paths["masked"] = out / f"{name}_masked.png"
    if cfg.grid:
        paths["grid"] = out / f"{name}_grid.png"
    if cfg.save_parsing:
        paths["parsing"] = out / f"{name}_parsing.png"
    if cfg.save_flow and mode == "transfer":
        paths["flow"] = out / f"{name}_flow.png"
    if cfg.preview and mode == "transfer":
        paths["preview"] = out / f"{name}_preview.png"
    return paths


def plan_tasks(spec: JobSpec, cfg: InferConfig, frame_hw: tuple[int, int]) -> list[Task]:
    """Every task of the job, in a stable order (sources sorted, then poses sorted / pairs order)."""
    if not spec.source.exists():
        raise InputError(f"{spec.source}: no such source image or folder")
    sources = list_images(spec.source) if spec.source.is_dir() else [spec.source]
    if not sources:
        raise InputError(f"{spec.source}: folder holds no images")
    src_poses, frame = _source_pose_lookup(spec, sources, cfg.pose_csv_frame)
    tasks: list[Task] = []
    if spec.mode == "inpaint":
        chosen = sources
        if spec.pairs is not None:
            names = {r[0] for r in read_pairs(spec.pairs)}
            chosen = [s for s in sources if s.name in names or s.stem in names]
        for src in chosen:
            tasks.append(Task(len(tasks), safe_stem(src.name), src, None, src_poses[src], frame,
                              _parsing_for(spec, src, len(sources)), _mask_for(spec, src, len(sources))))
        return tasks
    if (spec.pose is None) == (spec.pose_from is None):
        raise InputError("transfer needs exactly one of --pose FILE|DIR|CSV and --pose-from IMAGE|DIR")
    targets = list_pose_sources(spec.pose or spec.pose_from, from_images=spec.pose_from is not None,
                                csv_frame=cfg.pose_csv_frame, model_hw=frame_hw)
    fit = ref = None
    if spec.video is not None and cfg.pose_frame in ("fit", "auto") and all(t.kind == "file" for t in targets):
        poses = []
        for t in targets:
            try:
                pose, _, recorded = read_pose_file_frame(t.path)  # type: ignore[arg-type]
            except GLocalError:
                continue  # reported again (as a failure) when the task runs
            if cfg.pose_frame == "fit" or recorded is None:  # auto: only poses it has to place by their box
                poses.append(pose)
        if cfg.pose_frame == "fit":
            fit = fit_transform_for_poses(poses, frame_hw, cfg.fit_margin)
        else:
            ref = pose_reference(poses)
    if spec.pairs is not None:
        by_source = {}
        for s in sources:
            by_source.setdefault(s.name, s)
            by_source.setdefault(s.stem, s)
        by_target: dict[str, PoseSource] = {}
        for t in targets:
            for key in (t.name, safe_stem(t.name), t.path.name if t.path else t.name,
                        t.path.stem if t.path else t.name):
                by_target.setdefault(key, t)
        combos = []
        for i, (a, b) in enumerate(read_pairs(spec.pairs), start=2):
            src = by_source.get(a) or by_source.get(Path(a).stem)
            tgt = by_target.get(b) or by_target.get(Path(b).stem) or by_target.get(safe_stem(b))
            if src is None or tgt is None:
                missing = a if src is None else b
                raise InputError(f"{spec.pairs}: row {i}: {missing!r} not found among the "
                                 f"{'sources' if src is None else 'target poses'}")
            combos.append((src, tgt))
    else:
        combos = [(s, t) for s in sources for t in targets]
    for src, tgt in combos:
        name = f"{safe_stem(src.name)}_to_{safe_stem(tgt.name)}"
        tasks.append(Task(len(tasks), name, src, tgt, src_poses[src], frame,
                          _parsing_for(spec, src, len(sources)), None, fit, ref))
    return tasks


# -------------------------------------------------------------------------------------------- load

_BACKENDS: dict[str, Any] = {}


def _backend(name: str) -> Any:
    """One keypoint backend per process (built lazily; loader workers build their own)."""
    if name not in _BACKENDS:
        _BACKENDS[name] = make_backend(BackendSpec(name))
    return _BACKENDS[name]


def _detect(image: np.ndarray, where: str, backend: str) -> Pose:
    pose = _backend(backend).detect(image)
    if pose is None or pose.num_visible == 0:
        raise InputError(f"{where}: the keypoint backend ({backend}) found no person")
    return pose


class TaskDataset(torch.utils.data.Dataset):
    """Prepares one :class:`Task` per item: a dict of arrays, or ``{"index", "error", "stage"}``."""

    def __init__(self, tasks: list[Task], mode: str, cfg: InferConfig, frame_hw: tuple[int, int],
                 parser_scale: int = 1) -> None:
        self.tasks, self.mode, self.cfg, self.frame_hw = tasks, mode, cfg, frame_hw
        self.parser_scale = parser_scale
        """The source parser's frame over the model's (``infer.source_parser``; 1: the same frame)."""

    def __len__(self) -> int:
        return len(self.tasks)

    def __getitem__(self, i: int) -> dict[str, Any]:
        task = self.tasks[i]
        try:
            return self._prepare(task)
        except GLocalError as exc:
            return {"index": task.index, "error": str(exc), "stage": "input"}
        except (ValueError, OSError, RuntimeError) as exc:  # an odd file that slipped past the readers
            return {"index": task.index, "error": f"{task.source}: {exc.__class__.__name__}: {exc}", "stage": "input"}

    def _prepare(self, task: Task) -> dict[str, Any]:
        cfg, h, w = self.cfg, *self.frame_hw
        raw_image = load_image(task.source)
        image, notes = limit_size(raw_image, cfg.max_input_side, str(task.source))
        raw_hw = raw_image.shape[:2]
        del raw_image
        src_pose: Pose | None = None
        sp = task.source_pose
        if sp is not None and sp.kind == "file":
            src_pose, note = read_pose_file(sp.path)  # type: ignore[arg-type]
            if "kept person" in note:
                notes.append(f"{sp.path}: {note}")
        elif sp is not None and sp.pose is not None:
            src_pose = convert_csv_pose(sp.pose, task.source_pose_frame, image.shape[:2])
        if src_pose is not None and raw_hw != image.shape[:2]:
            src_pose = src_pose.resize(raw_hw, image.shape[:2])
        if src_pose is None:
            src_pose = _detect(image, f"{task.source}", cfg.keypoints)
        parsing = read_parsing(task.source_parsing) if task.source_parsing is not None else None
        parsing = match_downscale(parsing, raw_hw, image.shape[:2])
        prepared = prepare_source(image, src_pose, parsing, (h, w), str(task.source), margin=cfg.fit_margin,
                                  min_visible=cfg.min_visible_keypoints, parser_scale=self.parser_scale)
        prepared.raw_hw = raw_hw
        notes += prepared.notes
        target, mask = None, None
        if self.mode == "transfer":
            target, more = self._target(task, prepared, raw_hw)
            notes += more
        else:
            mask, prepared = self._mask(task, prepared, notes, image)
        return {"index": task.index, "notes": notes, "transform": prepared.transform,
                "input": ModelInput(prepared.image, prepared.pose, prepared.transform, prepared.parsing, target, mask,
                                    prepared.parser_image)}

    def _target(self, task: Task, prepared: PreparedSource,
                canvas_hw: tuple[int, int] | None = None) -> tuple[Pose, list[str]]:
        cfg, hw = self.cfg, self.frame_hw
        t = task.target
        assert t is not None
        where = f"target pose {t.path if t.kind != 'pose' else t.name}"
        notes: list[str] = []
        if t.kind == "image":
            ref, notes = load_source_image(t.path, cfg.max_input_side)  # type: ignore[arg-type]
            pose = _detect(ref, str(t.path), cfg.keypoints)
            _, ref_t = fit_to_frame(ref, hw[0], hw[1], pose=pose, margin=cfg.fit_margin)
            mapped, more = map_target_pose(ref_t.apply_to_pose(pose, clip=False), "model", hw, where=where,
                                           min_visible=cfg.min_visible_keypoints)
            return mapped, notes + more
        if t.kind == "pose":
            mapped, more = map_target_pose(t.pose, "model", hw, where=where,  # type: ignore[arg-type]
                                           min_visible=cfg.min_visible_keypoints)
            return mapped, more
        pose, note, recorded = read_pose_file_frame(t.path)  # type: ignore[arg-type]
        if "kept person" in note:
            notes.append(f"{t.path}: {note}")
        mapped, more = map_target_pose(pose, cfg.pose_frame, hw, prepared.transform, fit=task.fit, where=where,
                                       min_visible=cfg.min_visible_keypoints, canvas_hw=canvas_hw,
                                       recorded=recorded, source_pose=prepared.pose, ref=task.ref)
        return mapped, notes + more

    def _mask(self, task: Task, prepared: PreparedSource, notes: list[str],
              image: np.ndarray) -> tuple[np.ndarray | None, PreparedSource]:
        """The item's frame hole (``None`` for ``semantic``: the model makes it from the parsing) and the
        prepared photo to use: for a mask file's hole, which is missing, remade from ``image`` with the hole
        filled (:meth:`PreparedSource.hiding`)."""
        h, w = self.frame_hw
        if task.mask == "irregular":
            return irregular_mask(h, w, self.cfg.mask_ratio_bin, self.cfg.seed + task.index).astype(bool), prepared
        if task.mask == "semantic":
            return None, prepared
        mask, more = load_mask(task.mask, prepared.canvas_hw, self.cfg.mask_invert)  # type: ignore[arg-type]
        notes += more
        return frame_mask(mask, prepared.transform), prepared.hiding(image, mask)


def collate(items: list[dict[str, Any]]) -> tuple[dict[str, torch.Tensor] | None, list[dict[str, Any]], list[dict]]:
    """The loader's collate: the good items stacked by :func:`glocal_cli.infer.prepare.collate`; returns
    ``(batch or None, metas, failures)``."""
    good = [it for it in items if "error" not in it]
    bad = [it for it in items if "error" in it]
    metas = [{"index": it["index"], "notes": it["notes"], "transform": it["transform"]} for it in good]
    return (collate_inputs([it["input"] for it in good]) if good else None), metas, bad


# --------------------------------------------------------------------------------------------- run


def _grid(task_mode: str, source: np.ndarray, src_xy: np.ndarray, src_vis: np.ndarray, tgt: tuple | None,
          parsing: np.ndarray, result: np.ndarray, masked: np.ndarray | None) -> np.ndarray:
    white = np.full_like(source, 255)
    panels = [source, draw_skeleton(white, Pose(src_xy, src_vis), radius=1, thickness=1)]
    if tgt is not None:
        panels.append(draw_skeleton(white, Pose(*tgt), radius=1, thickness=1))
    if masked is not None:
        panels.append(masked)
    panels += [colorize(parsing), result]
    return np.concatenate(panels, axis=1)


def _write_item(task: Task, paths: dict[str, Path], mode: str, cfg: InferConfig, arrays: dict[str, Any],
                transform: FrameTransform) -> None:
    result = arrays["result"]
    final, masked = result, arrays.get("masked")
    inpainting = mode == "inpaint" and cfg.inpaint_output == "source"
    if inpainting or (cfg.paste_back and mode == "transfer"):
        original = load_image(task.source)
        hole = None
        if inpainting:  # the photo as given, every known pixel kept, the holes from the model
            if isinstance(task.mask, Path):
                hole = load_mask(task.mask, original.shape[:2], cfg.mask_invert)[0]  # warnings shown by the loader
            else:
                hole = mask_to_canvas(arrays["mask"], transform, original.shape[:2])
            masked = original.copy()
            masked[hole] = 255
        final, notes = compose(result, original, transform, hole=hole, detail=arrays.get("detail"),
                               prefill=arrays.get("prefill"), probs=arrays.get("fill_probs"),
                               feather=cfg.inpaint_feather, fill=cfg.inpaint_fill, texture=cfg.texture_options())
        for note in notes:
            warn(f"{task.source}: {note}")
    save_image(paths["result"], final)
    if "masked" in paths:
        save_image(paths["masked"], masked)
    if "grid" in paths:
        save_image(paths["grid"], _grid(mode, arrays["source"], arrays["source_xy"], arrays["source_vis"],
                                        arrays.get("target"), arrays["parsing"], result, arrays.get("masked")))
    if "parsing" in paths:
        save_image(paths["parsing"], colorize(arrays["parsing"]))
    if "flow" in paths and arrays.get("flow") is not None:
        h, w = result.shape[:2]
        save_image(paths["flow"], resize_image(arrays["flow"], h, w, "nearest"))
    if "preview" in paths and arrays.get("preview") is not None:
        save_image(paths["preview"], preview_picture(arrays["source"], result, arrays["preview"]))


def _write_failures(out: Path, failures: list[Failure], rank: int, world: int) -> Path:
    """``failures.csv`` (or ``failures.rank<r>.csv``): failures, then notes (stage ``note``)."""
    name = "failures.csv" if world == 1 else f"failures.rank{rank}.csv"
    path = out / name
    with atomic_output(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["source", "target", "stage", "error"])
        for f in failures:
            writer.writerow([f.source, f.target, f.stage, f.error])
    return path


def run_job(pipeline: Any, spec: JobSpec, cfg: InferConfig | None = None, show_progress: bool = True) -> BatchReport:
    """Run a folder job end to end (see the module docstring); returns the :class:`BatchReport`."""
    cfg = cfg or pipeline.config
    started = time.perf_counter()
    out = check_out_dir(spec.out)
    frame_hw = pipeline.frame_hw
    all_tasks = plan_tasks(spec, cfg, frame_hw)
    rank, world = _shard()
    report = BatchReport(total=len(all_tasks), out=out, rank=rank, world=world)
    mine = all_tasks[rank::world]
    todo = [t for t in mine if spec.overwrite or not output_paths(out, t.name, spec.mode, cfg)["result"].exists()]
    if any(t.source_pose is None or (t.target is not None and t.target.kind == "image") for t in todo):
        require_detector(cfg.keypoints)  # one clear error (naming the install command), not one per photo
    out.mkdir(parents=True, exist_ok=True)
    report.skipped = len(mine) - len(todo)
    if report.skipped:
        info(f"{report.skipped} of {len(mine)} output(s) exist and are kept (use --overwrite to replace them)")
    by_index = {t.index: t for t in all_tasks}
    flow = (pipeline.flow or cfg.flow) if spec.mode == "transfer" else None
    if flow is not None:
        flow = pipeline.flow_mode(flow)  # hybrid without flow_refine weights: one error before any work
    if flow in ("body3d", "hybrid") or pipeline.config.source_parsing == "body3d":
        pipeline.body_flow.body  # noqa: B018 - a bad --body-model: one error before any work
    dataset = TaskDataset(todo, spec.mode, cfg, frame_hw, pipeline.parser_scale)
    workers = min(cfg.workers, max(0, len(todo) // max(1, cfg.batch_size)))  # no idle worker start-up for tiny jobs
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=cfg.batch_size, shuffle=False, num_workers=workers, collate_fn=collate,
        pin_memory=pipeline.device.type == "cuda", persistent_workers=False,
        prefetch_factor=4 if workers > 0 else None,
    )
    pending: list[tuple[Task, Future]] = []
    seen_notes: set[str] = set()
    with ThreadPoolExecutor(max_workers=cfg.writer_threads) as pool, make_progress() as progress:
        bar = progress.add_task(spec.mode, total=len(todo), status="", visible=show_progress)
        for batch, metas, bad in loader:
            for item in bad:
                task = by_index[item["index"]]
                report.failures.append(Failure.of(task, item["stage"], item["error"]))
            for meta in metas:
                for note in meta["notes"]:
                    if note not in seen_notes:  # a source's warning once, not once per target pose
                        seen_notes.add(note)
                        warn(note)
                        report.warnings += 1
            if batch is not None:
                try:
                    result = pipeline.forward_batch(batch, spec.mode, want_flow=cfg.save_flow,
                                                    mask_classes=cfg.mask_classes, mask_dilate=cfg.mask_dilate,
                                                    flow=flow, want_preview=cfg.preview and spec.mode == "transfer")
                except (GLocalError, RuntimeError) as exc:
                    for meta in metas:
                        task = by_index[meta["index"]]
                        report.failures.append(Failure.of(task, "model",
                                                          f"{exc.__class__.__name__}: {str(exc).splitlines()[0]}"))
                    result = None
                if result is not None:
                    for j, meta in enumerate(metas):
                        task = by_index[meta["index"]]
                        arrays = {
                            "result": result.image[j].numpy(), "parsing": result.parsing[j].numpy(),
                            "source": batch["image"][j].permute(1, 2, 0).numpy(),
                            "source_xy": batch["source_xy"][j].numpy(), "source_vis": batch["source_vis"][j].numpy(),
                        }
                        if "target_xy" in batch:
                            arrays["target"] = (batch["target_xy"][j].numpy(), batch["target_vis"][j].numpy())
                        if result.masked is not None:
                            arrays["masked"] = result.masked[j].numpy()
                        if result.mask is not None:
                            arrays["mask"] = result.mask[j].numpy()
                        if result.prefill is not None:
                            arrays["prefill"] = result.prefill[j].numpy()
                        if result.fill_probs is not None:
                            arrays["fill_probs"] = result.fill_probs[j].numpy()
                        if result.flow is not None:
                            arrays["flow"] = result.flow[j].numpy()
                        if result.preview is not None:
                            arrays["preview"] = result.preview[j]
                        if result.detail is not None:
                            arrays["detail"] = tuple(result.detail[k][j].numpy() for k in DETAIL_KEYS)
                        for note in result.notes[j] if result.notes else ():
                            warn(f"{task.name}: {note}")  # per item: which result did not get the 3D flow
                            report.notes.append(Failure.of(task, "note", note))
                            report.warnings += 1
                        paths = output_paths(out, task.name, spec.mode, cfg)
                        pending.append((task, pool.submit(_write_item, task, paths, spec.mode, cfg, arrays,
                                                          meta["transform"])))
            progress.update(bar, advance=len(metas) + len(bad),
                            status=f"[red]{len(report.failures)} failed[/red]" if report.failures else "")
            pending = _collect(pending, report, wait=False)
        _collect(pending, report, wait=True)
    report.failed = len(report.failures)
    if spec.video is not None:
        _barrier(world)
        if rank == 0:
            report.videos = _write_videos(spec, all_tasks, out, cfg)
    if report.failures or report.notes or (out / "failures.csv").exists():
        _write_failures(out, report.failures + report.notes, rank, world)
    report.seconds = time.perf_counter() - started
    debug(f"rank {rank}/{world}: {report.done} written in {report.seconds:.1f} s")
    return report


def _collect(pending: list[tuple[Task, Future]], report: BatchReport, wait: bool) -> list[tuple[Task, Future]]:
    left = []
    for task, fut in pending:
        if not wait and not fut.done():
            left.append((task, fut))
            continue
        try:
            fut.result()
            report.done += 1
        except (GLocalError, OSError, ValueError) as exc:
            report.failures.append(Failure.of(task, "write", f"{exc.__class__.__name__}: {exc}"))
    return left


def _barrier(world: int) -> None:
    """Wait for every torchrun rank (only when several run), so rank 0 sees all frames."""
    if world <= 1:
        return
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("gloo")
    dist.barrier()


def _write_videos(spec: JobSpec, tasks: list[Task], out: Path, cfg: InferConfig) -> list[Path]:
    """One animation per source from its result frames on disk (in pose order; missing frames skipped)."""
    assert spec.video is not None
    groups: dict[Path, list[Task]] = {}
    for t in tasks:
        groups.setdefault(t.source, []).append(t)
    written = []
    for src, group in groups.items():
        path = spec.video if len(groups) == 1 else spec.video.with_name(
            f"{spec.video.stem}_{safe_stem(src.name)}{spec.video.suffix}")
        if path.exists() and not spec.overwrite:  # never replace a file without --overwrite
            warn(f"{path}: exists and is kept (use --overwrite to rebuild the video)")
            continue
        frames = [output_paths(out, t.name, spec.mode, cfg)["result"] for t in group]
        frames = [f for f in frames if f.exists()]
        if not frames:
            warn(f"{path}: no frames were produced; video not written")
            continue
        with FrameWriter(path, cfg.fps) as writer:
            for f in frames:
                writer.add(load_image(f))
        written.append(path)
    return written
