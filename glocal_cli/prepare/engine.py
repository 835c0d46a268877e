"""The preparation engine shared by the ``deepfashion``, ``market`` and ``folder`` kinds.

A kind discovers its source images (:class:`SourceItem`), decides splits and pairs, and hands
them to :func:`run_preparation`, which

1. refuses to touch a finished dataset without ``overwrite`` and resumes an unfinished one: every
   finished image is appended to a journal (``.glocal-prepare.jsonl``) and each output file is
   written atomically, so a crash loses at most the images in flight;
2. processes the images in chunks, in ``workers`` processes (each builds its own keypoint backend
   from a picklable :class:`~glocal_cli.data.backends.BackendSpec`): load, find the keypoints, fit
   into the model frame, import the parsing map, save;
3. writes ``keypoints.csv``, the split lists, the pairs, ``manifest.json`` and the validation report;
   with ``--correspondence body3d`` / ``--parsing body3d`` it first fits the 3D body model to every image
   and writes the fits, the per-pair correspondence and the parsing maps
   (:mod:`~glocal_cli.prepare.body3d`), before the manifest (so that an interrupted run resumes).

Frame fitting: the image keeps its aspect ratio, is resized with ``resample`` (bicubic by
default, antialiased: PIL's filters widen with the downscale factor) and padded with white;
a raw image wider than the frame whose extra side columns are white padding (DeepFashion's
256x256 low-resolution photos) is first trimmed to the frame's aspect ratio. For the ``folder``
kind the person is located from the keypoints: the photo is cropped to a box of the frame's
aspect ratio centred on the person (:func:`person_crop_box`), then fitted the same way.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shutil
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from glocal_cli.body import load_body_model
from glocal_cli.body.config import BodyConfig
from glocal_cli.console import make_progress
from glocal_cli.data.backends import BackendSpec, KeypointBackend, resolve_auto
from glocal_cli.data.images import fit_to_frame, load_image, resize_image, save_image
from glocal_cli.data.keypoints import Pose, write_keypoint_csv
from glocal_cli.data.layout import (
    BODY_DIR,
    CORRESPONDENCE_DIR,
    IMAGES_DIR,
    KEYPOINTS_FILE,
    MANIFEST_FILE,
    PARSING_DIR,
    list_file,
    pairs_file,
    read_pairs_csv,
    write_list,
    write_manifest,
    write_pairs_csv,
)
from glocal_cli.data.parsing import (
    CCP59_TO_8,
    LIP20_TO_8,
    NUM_CLASSES,
    SKIN,
    parse_remap,
    read_parsing,
    split_skin,
    write_parsing,
)
from glocal_cli.data.sizes import parse_size
from glocal_cli.errors import ConfigError, DataError, GLocalError, InputError, OutputExistsError
from glocal_cli.prepare.body3d import (
    CORRESPONDENCE_CHOICES,
    FITS_CSV,
    Body3dOptions,
    Body3dResult,
    dataset_pairs,
    person_key,
    run_body3d,
)
from glocal_cli.prepare.pairs import filter_pairs, generate_pairs
from glocal_cli.prepare.report import REPORT_JSON, REPORT_MD, ValidationReport
from glocal_cli.prepare.validation import (
    VAL_SPLIT,
    carve_validation_split,
    remove_validation_split,
    write_validation_split,
)

__all__ = [
    "JOURNAL_FILE",
    "PARSING_FORMATS",
    "PairPlan",
    "PrepareOptions",
    "PrepareResult",
    "SourceItem",
    "parse_size",
    "parsing_table",
    "person_crop_box",
    "remove_stale",
    "run_preparation",
]

JOURNAL_FILE = ".glocal-prepare.jsonl"
"""Journal of finished images inside the output folder (what makes a run resumable)."""

PARSING_FORMATS: tuple[str, ...] = ("spl8", "lip20", "ccp59", "remap")
"""``--parsing-format``: PISE's 8-class maps, 20-label LIP/CIHP maps, Clothing Co-Parsing's 59 labels (their
``skin`` split into face, arms and legs by the keypoints), or a user remap."""

_WHITE = 245


def parsing_table(parsing_format: str, remap: str | None) -> tuple[int, ...] | None:
    """The label lookup table of a parsing format (``None``: labels are already the 8 classes)."""
    if parsing_format not in PARSING_FORMATS:
        raise ConfigError(f"--parsing-format {parsing_format!r}: use one of {', '.join(PARSING_FORMATS)}")
    if parsing_format == "lip20":
        return LIP20_TO_8
    if parsing_format == "ccp59":
        return CCP59_TO_8
    if parsing_format == "remap":
        if not remap:
            raise ConfigError("--parsing-format remap needs --remap 'source:class,...' (e.g. '0:0,1:1,2:1')")
        return parse_remap(remap)
    if remap:
        raise ConfigError("--remap is only used with --parsing-format remap")
    return None


@dataclass(frozen=True)
class PrepareOptions:
    """Options shared by every real-data kind (the CLI's options, validated)."""

    out: Path
    """Output folder (the prepared dataset layout)."""
    height: int = 256
    """Model frame height."""
    width: int = 176
    """Model frame width."""
    keypoints: BackendSpec = field(default_factory=lambda: BackendSpec("auto"))
    """Keypoint backend."""
    parsing_dir: Path | None = None
    """Folder of parsing PNGs (``<stem>.png``); ``None``: no parsing (training predicts it)."""
    parsing_format: str = "spl8"
    """Labels of the parsing PNGs: ``spl8``, ``lip20`` or ``remap``."""
    remap: str | None = None
    """User remap ``"source:class,..."`` for ``parsing_format="remap"``."""
    resample: str = "bicubic"
    """Resampling filter of the image resize (label maps always use nearest)."""
    workers: int = 0
    """Worker processes (0: in this process)."""
    dry_run: bool = False
    """Only report what would be done."""
    overwrite: bool = False
    """Replace a finished dataset in ``out``."""
    seed: int = 0
    """Seed of split and pair generation."""
    min_keypoints: int = 0
    """Generated pairs skip images with fewer visible keypoints (0: keep all)."""
    max_pairs_per_identity: int | None = None
    """Cap on generated pairs per identity (``None``: every ordered pair)."""
    test_fraction: float = 0.1
    """Share of images in the test split when the split is generated."""
    chunk_size: int = 0
    """Images per work unit (0: 8 for mmpose's batches, else 16)."""
    correspondence: str = "none"
    """``body3d``: fit the 3D body model to every image's keypoints and write per-pair correspondence
    (``body/``, ``correspondence/``; see :mod:`glocal_cli.prepare.body3d`); ``none``: do not."""
    body_parsing: bool = False
    """Parsing maps rendered from the fitted 3D body (``--parsing body3d``), for data without parsing."""
    body: BodyConfig = field(default_factory=BodyConfig)
    """The 3D body model (``--body-model``: ``body.model``) and its fitting, for the two options above."""
    person_mask: str = "auto"
    """Mask refining the body3d parsing: ``auto`` (plain background for DeepFashion), ``plain`` or ``none``."""
    device: str = "cpu"
    """Device of the 3D body fits and renders."""

    def __post_init__(self) -> None:
        if self.height <= 0 or self.width <= 0 or self.height % 4 or self.width % 4:
            raise ConfigError(f"frame {self.height}x{self.width}: height and width must be positive multiples of 4")
        if self.resample not in ("nearest", "bilinear", "bicubic", "area", "lanczos"):
            raise ConfigError(f"resample {self.resample!r}: use bicubic, bilinear, area, lanczos or nearest")
        if self.workers < 0:
            raise ConfigError("--workers must be >= 0")
        if not 0.0 <= self.test_fraction < 1.0:
            raise ConfigError(f"--test-fraction {self.test_fraction}: must be in [0, 1)")
        parsing_table(self.parsing_format, self.remap)
        if self.correspondence not in CORRESPONDENCE_CHOICES:
            raise ConfigError(f"--correspondence {self.correspondence!r}: use one of {', '.join(CORRESPONDENCE_CHOICES)}")
        if self.body_parsing and self.parsing_dir is not None:
            raise ConfigError("--parsing takes either a folder of parsing maps or body3d, not both")
        self.body3d_options()

    def body3d_options(self) -> Body3dOptions:
        """The body3d stage's options (:mod:`glocal_cli.prepare.body3d`)."""
        return Body3dOptions(correspondence=self.correspondence == "body3d", parsing=self.body_parsing,
                             body=self.body, person_mask=self.person_mask, device=self.device,
                             overwrite=self.overwrite)

    def to_json(self) -> dict[str, Any]:
        """JSON-friendly view for the manifest (paths as strings, the backend by its fields)."""
        d = asdict(self)
        d["out"] = str(self.out)
        d["parsing_dir"] = str(self.parsing_dir) if self.parsing_dir else None
        spec = d.pop("keypoints")
        d["keypoints"] = {k: v for k, v in spec.items() if v not in (None, {})}
        for k in ("dry_run", "overwrite", "workers", "chunk_size", "device"):
            d.pop(k)
        return _jsonable(d)


def _jsonable(value: Any) -> Any:
    """Paths -> strings, tuples -> lists, dataclasses -> dicts, recursively (JSON round-trip stable)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "__dataclass_fields__"):
        return _jsonable(asdict(value))
    return value


@dataclass(frozen=True)
class SourceItem:
    """One source image: its dataset ``name``, the file, the identity key and its split."""

    name: str
    source: Path
    identity: str
    split: str
    parsing: Path | None = None
    shown: str = ""
    """How the report shows the source (a path relative to the raw root)."""


@dataclass
class PairPlan:
    """Pairs of one split: given (``pairs``, from a community file) or generated (``pairs=None``)."""

    split: str
    pairs: list[tuple[str, str]] | None = None
    source: str = "generated"
    identity: Callable[[str], str] | None = None
    exclude_identities: tuple[str, ...] = ()


@dataclass
class PrepareResult:
    """What a preparation did (or, with ``dry_run``, would do)."""

    kind: str
    out: Path
    dry_run: bool
    counts: dict[str, int]
    problems: dict[str, int]
    backend: str
    parsing: str
    elapsed_s: float = 0.0
    report_md: Path | None = None
    report_json: Path | None = None
    notes: list[str] = field(default_factory=list)
    body3d: Body3dResult | None = None
    """What the body3d stage did (``--correspondence body3d`` / ``--parsing body3d``)."""

    def rows(self) -> list[tuple[str, str]]:
        """``(item, value)`` rows for the CLI's summary table."""
        rows = [("kind", self.kind), ("output", str(self.out)), ("keypoints", self.backend), ("parsing", self.parsing)]
        rows += [(k, str(v)) for k, v in self.counts.items()]
        if self.body3d is not None:
            rows += self.body3d.rows()
        rows += [(f"problem: {k}", str(v)) for k, v in self.problems.items()]
        if self.report_md is not None:
            rows.append(("report", str(self.report_md)))
        if not self.dry_run:
            rows.append(("time", f"{self.elapsed_s:.1f} s"))
        return rows


# ------------------------------------------------------------------------------------ the worker


@dataclass(frozen=True)
class _Task:
    name: str
    source: str
    shown: str
    parsing: str | None


@dataclass(frozen=True)
class _Context:
    out: str
    height: int
    width: int
    resample: str
    table: tuple[int, ...] | None
    with_parsing: bool
    locate_person: bool
    trim_padding: bool
    split_skin: bool = False


_worker: dict[str, Any] = {}


def _init_worker(spec: BackendSpec, ctx: _Context) -> None:
    """Process initialiser: one backend per worker, single-threaded numerics."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        import cv2

        cv2.setNumThreads(1)
    except ImportError:  # OpenCV is optional in a worker that only reads annotations
        pass
    _worker["backend"] = spec.build()
    _worker["ctx"] = ctx


def _trim_side_padding(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Cut white side columns off an image wider than the frame's aspect ratio (when they are padding)."""
    h, w = image.shape[:2]
    keep = round(h * width / height)
    if keep >= w - 1:
        return image
    left = (w - keep) // 2
    right = w - keep - left
    strips = np.concatenate([image[:, :left].reshape(-1, 3), image[:, w - right :].reshape(-1, 3)])
    if strips.size and strips.min() >= _WHITE:
        return np.ascontiguousarray(image[:, left : w - right])
    return image


def person_crop_box(pose: Pose, height: int, width: int, frame_h: int, frame_w: int, margin: float = 0.12) -> tuple[int, int, int, int]:
    """``(x0, y0, x1, y1)``: a box of the frame's aspect ratio around the person in a ``height x width`` photo.

    The keypoint box is widened by ``margin`` x the person's height on every side (keypoints stop
    at the nose and ankles, so the head top and the feet need room), grown to the frame's aspect
    ratio, centred on the person and shifted to stay inside the photo; when the photo is too small
    in one direction the box takes its whole extent there (the frame fitting then pads).
    """
    box = pose.bbox()
    if box is None:
        return 0, 0, width, height
    bx0, by0, bx1, by1 = box
    m = margin * max(by1 - by0, bx1 - bx0, 1.0)
    need_w, need_h = bx1 - bx0 + 2 * m, by1 - by0 + 2 * m
    ch = max(need_h, need_w * frame_h / frame_w)
    cw = ch * frame_w / frame_h
    ch, cw = min(ch, height), min(cw, width)
    cx, cy = (bx0 + bx1) / 2, (by0 + by1) / 2
    x0 = int(round(min(max(cx - cw / 2, 0), width - cw)))
    y0 = int(round(min(max(cy - ch / 2, 0), height - ch)))
    return x0, y0, min(width, x0 + int(round(cw))), min(height, y0 + int(round(ch)))


def _load_parsing(task: _Task, ctx: _Context, hw: tuple[int, int], trim: tuple[int, int]) -> np.ndarray:
    """The task's label map as 8 classes, at ``hw`` (the photo after trimming the side padding)."""
    if task.parsing is None:
        raise InputError(f"{task.shown}: no parsing map")
    labels = read_parsing(task.parsing, remap=ctx.table)
    if labels.size and labels.max() >= NUM_CLASSES and not (ctx.split_skin and labels.max() == SKIN):
        raise InputError(f"{task.parsing}: labels above {NUM_CLASSES - 1}; pass --parsing-format lip20 or a --remap")
    full_w = hw[1] + trim[0] + trim[1]
    if labels.shape == (hw[0], full_w) and (trim[0] or trim[1]):
        labels = labels[:, trim[0] : full_w - trim[1]]
    if labels.shape != hw:
        labels = resize_image(labels, hw[0], hw[1], "nearest")
    return labels


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _process_chunk(tasks: Sequence[_Task], backend: KeypointBackend | None = None, ctx: _Context | None = None) -> list[dict]:
    """Load, detect, fit and save a chunk of images; one record per task (``status`` ok or a problem kind)."""
    backend = backend if backend is not None else _worker["backend"]
    ctx = ctx if ctx is not None else _worker["ctx"]
    out = Path(ctx.out)
    records: list[dict] = []
    loaded: list[tuple[_Task, np.ndarray, tuple[int, int]]] = []
    for t in tasks:
        try:
            img = load_image(t.source)
        except InputError as e:
            records.append({"name": t.name, "shown": t.shown, "status": "corrupt_image", "message": str(e)})
            continue
        trim = (0, 0)
        if ctx.trim_padding:
            trimmed = _trim_side_padding(img, ctx.height, ctx.width)
            if trimmed.shape != img.shape:
                left = (img.shape[1] - trimmed.shape[1]) // 2
                trim = (left, img.shape[1] - trimmed.shape[1] - left)
            img = trimmed
        loaded.append((t, img, trim))
    if not loaded:
        return records
    failed: set[str] = set()
    try:
        poses = backend.detect_batch([im for _, im, _ in loaded], [t.name for t, _, _ in loaded])
    except GLocalError:
        raise
    except Exception:  # a detector failing on a batch: retry image by image, report the failures
        poses = []
        for t, im, _ in loaded:
            try:
                poses.append(backend.detect(im, t.name))
            except Exception as e:
                failed.add(t.name)
                records.append({"name": t.name, "shown": t.shown, "status": "corrupt_image",
                                "message": f"{t.shown}: keypoint backend failed ({e.__class__.__name__}: {e})"})
                poses.append(None)
    for (t, img, trim), pose in zip(loaded, poses):
        if t.name in failed:
            continue
        if pose is None:
            records.append({"name": t.name, "shown": t.shown, "status": "no_person",
                            "message": f"{t.shown}: no person found by {backend.name}"})
            continue
        crop = (0, 0, img.shape[1], img.shape[0])
        photo_pose = pose
        if ctx.locate_person:
            crop = person_crop_box(pose, img.shape[0], img.shape[1], ctx.height, ctx.width)
            pose = pose.transform(1.0, 1.0, -crop[0], -crop[1])
        photo = np.ascontiguousarray(img[crop[1] : crop[3], crop[0] : crop[2]])
        frame_img, transform = fit_to_frame(photo, ctx.height, ctx.width, resample=ctx.resample)  # type: ignore[arg-type]
        frame_pose = transform.apply_to_pose(pose)
        if frame_pose.num_visible == 0:
            records.append({"name": t.name, "shown": t.shown, "status": "no_person",
                            "message": f"{t.shown}: every keypoint falls outside the frame"})
            continue
        has_parsing = False
        if ctx.with_parsing:
            if t.parsing is None or not Path(t.parsing).is_file():
                records.append({"name": t.name, "shown": t.shown, "status": "parsing_missing",
                                "message": f"{t.shown}: no parsing map {Path(t.parsing).name if t.parsing else ''}".rstrip()})
                continue
            try:
                labels = _load_parsing(t, ctx, img.shape[:2], trim)
            except InputError as e:
                records.append({"name": t.name, "shown": t.parsing, "status": "parsing_invalid", "message": str(e)})
                continue
            if ctx.split_skin:
                labels = split_skin(labels, photo_pose.xy, photo_pose.visible)
            stack = np.repeat(labels[crop[1] : crop[3], crop[0] : crop[2], None], 3, axis=2)
            frame_labels, _ = fit_to_frame(stack, ctx.height, ctx.width, resample="nearest", pad_value=0)
            write_parsing(out / PARSING_DIR / f"{Path(t.name).stem}.png", frame_labels[..., 0])
            has_parsing = True
        image_path = out / IMAGES_DIR / t.name
        save_image(image_path, frame_img)
        records.append({
            "name": t.name,
            "shown": t.shown,
            "status": "ok",
            "xy": [[round(float(x), 2), round(float(y), 2)] for x, y in frame_pose.xy],
            "visible": [bool(v) for v in frame_pose.visible],
            "parsing": has_parsing,
            "sha256": _sha256(image_path),
        })
    return records


# ------------------------------------------------------------------------------------ the journal


def _journal_header(kind: str, options: PrepareOptions) -> dict[str, Any]:
    o = options.to_json()
    key = {k: o[k] for k in ("height", "width", "keypoints", "parsing_dir", "parsing_format", "remap", "resample")}
    return {"journal": 1, "kind": kind, "key": key}


def _read_journal(path: Path, header: dict[str, Any]) -> dict[str, dict]:
    """Finished records of an interrupted run (a torn last line is ignored); a changed setup is an error."""
    done: dict[str, dict] = {}
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines:
        return done
    try:
        first = json.loads(lines[0])
    except json.JSONDecodeError:
        first = None
    if first != header:
        raise OutputExistsError(
            f"{path.parent}: holds an unfinished preparation with other options; pass --overwrite to start again"
        )
    for line in lines[1:]:
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        done[rec["name"]] = rec
    return done


def _check_output(out: Path, overwrite: bool) -> None:
    if not out.exists():
        return
    if not out.is_dir():
        raise OutputExistsError(f"{out}: exists and is not a folder")
    if overwrite:
        return
    if (out / MANIFEST_FILE).exists():
        raise OutputExistsError(f"{out}: already holds a prepared dataset; pass --overwrite to replace it")
    if not (out / JOURNAL_FILE).exists() and any(
        (out / p).exists()
        for p in (IMAGES_DIR, KEYPOINTS_FILE, PARSING_DIR, BODY_DIR, CORRESPONDENCE_DIR, "train.lst", "test.lst")
    ):
        raise OutputExistsError(f"{out}: is not empty and holds no resumable preparation; pass --overwrite")


# -------------------------------------------------------------------------------------- the run


def _record_pose(rec: dict) -> Pose:
    return Pose(np.asarray(rec["xy"], np.float32), np.asarray(rec["visible"], bool))


def _digest(records: dict[str, dict]) -> str:
    h = hashlib.sha256()
    for name in sorted(records):
        h.update(f"{name} {records[name]['sha256']}\n".encode())
    return h.hexdigest()


def run_preparation(
    kind: str,
    items: Sequence[SourceItem],
    pair_plans: Sequence[PairPlan],
    options: PrepareOptions,
    report: ValidationReport,
    card: str,
    locate_person: bool = False,
    trim_padding: bool = False,
    splits: Sequence[str] = ("train", "test"),
) -> PrepareResult:
    """Prepare ``items`` into ``options.out`` (see the module docstring); returns what was done.

    Raises :class:`DataError` (after writing the report) when no image could be prepared,
    :class:`OutputExistsError` when ``out`` holds a finished dataset and ``overwrite`` is off.
    """
    out = options.out
    start = time.perf_counter()
    _check_output(out, options.overwrite)
    spec = options.keypoints
    with_parsing = options.parsing_dir is not None
    b3 = options.body3d_options()
    if b3.enabled:
        load_body_model(b3.body.model)  # an unusable body model fails now, not after the keypoints
    if with_parsing:
        parsing_desc = f"{options.parsing_format} maps from {options.parsing_dir}"
    elif b3.parsing:
        parsing_desc = (f"body3d: rendered from the {b3.body.model} body fitted to the keypoints "
                        f"(person mask: {b3.mask_mode(kind)})")
    else:
        parsing_desc = "none: training predicts the source parsing (semantic network with target pose = source pose)"
        report.add("note", str(out), "no parsing maps given: " + parsing_desc)
    header = _journal_header(kind, options)
    journal = out / JOURNAL_FILE
    done: dict[str, dict] = {}
    if journal.exists() and not options.overwrite:
        done = _read_journal(journal, header)
        done = {
            n: r for n, r in done.items()
            if (out / IMAGES_DIR / n).is_file() and (not with_parsing or (out / PARSING_DIR / f"{Path(n).stem}.png").is_file())
        }
    todo = [it for it in items if it.name not in done]
    split_counts = {s: sum(1 for it in items if it.split == s) for s in splits}

    if options.dry_run:
        try:
            backend_desc = resolve_auto(spec).name
        except GLocalError as e:
            backend_desc = f"{spec.name} (unusable: {e})"
        counts = {"images found": len(items), "already done (resume)": len(done), "to process": len(todo)}
        counts.update({f"{s} images": n for s, n in split_counts.items()})
        for plan in pair_plans:
            counts[f"pairs-{plan.split}"] = len(plan.pairs) if plan.pairs is not None else -1
        res = PrepareResult(kind, out, True, counts, report.counts(), backend_desc, parsing_desc)
        res.notes.append("dry run: nothing was written; pairs -1 = generated after keypoints are known")
        if b3.enabled:
            res.notes.append(f"body3d ({b3.body.model}): every image is fitted and every pair corresponded after "
                             "the keypoints are known")
        return res

    ctx = _Context(
        out=str(out), height=options.height, width=options.width, resample=options.resample,
        table=parsing_table(options.parsing_format, options.remap), with_parsing=with_parsing,
        locate_person=locate_person, trim_padding=trim_padding, split_skin=options.parsing_format == "ccp59",
    )
    by_name = {it.name: it for it in items}
    tasks = [_Task(it.name, str(it.source), it.shown or str(it.source), str(it.parsing) if it.parsing else None) for it in todo]
    chunk = options.chunk_size or (8 if spec.name == "mmpose" else 16)
    chunks = [tasks[i : i + chunk] for i in range(0, len(tasks), chunk)]

    if options.overwrite and ((out / MANIFEST_FILE).exists() or journal.exists()):
        remove_stale(out)
    (out / IMAGES_DIR).mkdir(parents=True, exist_ok=True)
    if options.overwrite or not journal.exists():
        journal.write_text(json.dumps(header) + "\n", encoding="utf-8")
    records = dict(done)
    backend_desc = spec.name
    with journal.open("a", encoding="utf-8") as jf, make_progress() as progress:
        bar = progress.add_task(f"prepare {kind}", total=len(tasks), status="")

        def consume(recs: list[dict]) -> None:
            for rec in recs:
                if rec["status"] == "ok":
                    records[rec["name"]] = rec
                    jf.write(json.dumps(rec) + "\n")
                else:
                    report.add(rec["status"], rec["shown"], rec["message"])
            jf.flush()
            progress.update(bar, advance=len(recs), status=f"{len(records)} ok")

        if options.workers <= 0 or len(chunks) <= 1:
            backend = spec.build()
            backend_desc = backend.describe()
            try:
                for c in chunks:
                    consume(_process_chunk(c, backend, ctx))
            finally:
                backend.close()
        else:
            backend_desc = _describe(spec)
            mp_ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(options.workers, mp_context=mp_ctx, initializer=_init_worker, initargs=(spec, ctx)) as pool:
                pending: set[Future] = set()
                queue = list(reversed(chunks))
                while queue or pending:
                    while queue and len(pending) < 2 * options.workers:
                        pending.add(pool.submit(_process_chunk, queue.pop()))
                    finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in finished:
                        consume(fut.result())

    return _finish(kind, items, by_name, records, pair_plans, options, report, card, backend_desc, parsing_desc,
                   splits, start)


def _describe(spec: BackendSpec) -> str:
    backend = spec.build()
    try:
        return backend.describe()
    finally:
        backend.close()


def _finish(
    kind: str,
    items: Sequence[SourceItem],
    by_name: dict[str, SourceItem],
    records: dict[str, dict],
    pair_plans: Sequence[PairPlan],
    options: PrepareOptions,
    report: ValidationReport,
    card: str,
    backend_desc: str,
    parsing_desc: str,
    splits: Sequence[str],
    start: float,
) -> PrepareResult:
    out = options.out
    ok_names = [it.name for it in items if it.name in records]
    poses = {n: _record_pose(records[n]) for n in ok_names}
    counts: dict[str, int] = {"images": len(ok_names), "skipped": len(items) - len(ok_names)}
    if not ok_names:
        report.summary.update({"kind": kind, "images": 0, "keypoints": backend_desc})
        md, _ = report.write(out)
        raise DataError(f"{out}: no usable image was produced from {len(items)} source images; see {md}")
    write_keypoint_csv(out / KEYPOINTS_FILE, poses)
    split_names: dict[str, list[str]] = {}
    for s in splits:
        split_names[s] = sorted(n for n in ok_names if by_name[n].split == s)
        write_list(out / list_file(s), split_names[s])
        counts[s] = len(split_names[s])
    checksums: dict[str, str] = {KEYPOINTS_FILE: _sha256(out / KEYPOINTS_FILE)}
    for plan in pair_plans:
        names = split_names.get(plan.split, [])
        if plan.pairs is not None:
            kept, dropped = filter_pairs(plan.pairs, names)
            for a, b in dropped:
                missing = [n for n in (a, b) if n not in set(names)]
                report.add("pair_dropped", f"{a},{b}", f"{plan.source}: {', '.join(missing)} not prepared in {plan.split}")
        else:
            if plan.identity is None:
                raise ValueError(f"pair plan for {plan.split} needs an identity function")
            kept = generate_pairs(
                names, plan.identity, seed=options.seed, poses=poses, min_keypoints=options.min_keypoints,
                max_per_identity=options.max_pairs_per_identity, exclude_identities=plan.exclude_identities,
            )
        write_pairs_csv(out / pairs_file(plan.split), kept)
        counts[f"pairs-{plan.split}"] = len(kept)
        checksums[pairs_file(plan.split)] = _sha256(out / pairs_file(plan.split))
    for s in splits:
        checksums[list_file(s)] = _sha256(out / list_file(s))
    _write_validation(out, counts, checksums)
    checksums["images"] = _digest({n: records[n] for n in ok_names})
    has_parsing = options.parsing_dir is not None and all(records[n].get("parsing") for n in ok_names)
    b3 = options.body3d_options()
    body3d: Body3dResult | None = None
    if b3.enabled:
        persons = {n: person_key(kind, n, by_name[n].identity) for n in ok_names}
        body3d = run_body3d(out, kind, ok_names, poses, persons, dataset_pairs(out), options.height, options.width,
                            b3, report)
        checksums[f"{BODY_DIR}/{FITS_CSV}"] = _sha256(out / BODY_DIR / FITS_CSV)
        has_parsing = has_parsing or b3.parsing
        report.summary.update({k: v for k, v in body3d.rows()})
    parsing_source = "import" if options.parsing_dir is not None else "body3d" if b3.parsing else ""
    opts = options.to_json()
    if body3d is not None:
        opts["body3d"] = body3d.to_json()
    opts["keypoints_backend"] = backend_desc
    opts["checksums"] = checksums
    opts["checksums_note"] = "sha256 of each file; 'images' = sha256 of the sorted 'name sha256' lines"
    report.summary.update({"kind": kind, "keypoints": backend_desc, "parsing": parsing_desc, **counts})
    md, js = report.write(out)
    write_manifest(
        out, kind=kind, height=options.height, width=options.width, counts=counts, seed=options.seed,
        options=opts, has_parsing=has_parsing, has_surface=False, card=card,
        has_correspondence=bool(body3d is not None and body3d.correspondence), parsing_source=parsing_source,
    )
    return PrepareResult(
        kind=kind, out=out, dry_run=False, counts=counts, problems=report.counts(), backend=backend_desc,
        parsing=parsing_desc if has_parsing or options.parsing_dir is None else "incomplete: " + parsing_desc,
        elapsed_s=time.perf_counter() - start, report_md=md, report_json=js, body3d=body3d,
    )


def _write_validation(out: Path, counts: dict[str, int], checksums: dict[str, str]) -> None:
    """Carve the validation split (``val.lst``, ``pairs-val.csv``) from the training pairs just written."""
    remove_validation_split(out)
    if not (out / pairs_file("train")).is_file():
        return
    split = carve_validation_split(read_pairs_csv(out / pairs_file("train")))
    if not split.pairs:
        return
    write_validation_split(out, split)
    counts[VAL_SPLIT] = len(split.names)
    counts[f"pairs-{VAL_SPLIT}"] = len(split.pairs)
    for f in (list_file(VAL_SPLIT), pairs_file(VAL_SPLIT)):
        checksums[f] = _sha256(out / f)


def remove_stale(out: Path) -> None:
    """Delete a previous dataset's generated files (``--overwrite``): images, parsing, body fits,
    correspondence, lists, journal."""
    for sub in (IMAGES_DIR, PARSING_DIR, BODY_DIR, CORRESPONDENCE_DIR):
        if (out / sub).is_dir():
            shutil.rmtree(out / sub)
    for f in (JOURNAL_FILE, MANIFEST_FILE, KEYPOINTS_FILE, REPORT_MD, REPORT_JSON):
        (out / f).unlink(missing_ok=True)
