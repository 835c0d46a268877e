"""``prepare-data ... --correspondence body3d`` and ``--parsing body3d``: a 3D body in the loop of preparation.

Once the images and keypoints of a prepared dataset are written, :func:`run_body3d` fits the body model
(:mod:`glocal_cli.body`, Anny by default) to every image's keypoints in the model frame and writes:

* ``body/<stem>.npz`` - the fit of one image (:meth:`~glocal_cli.body.fit.FitResult.to_npz_dict`:
  ``global_orient (3,)``, ``body_pose (P, 3)``, ``shape (S,)``, ``camera (3,)`` = scale px/m, tx, ty,
  ``rms_px``, ``ok``, ``reason``, ``frame (2,)``; plain arrays, ``np.load(allow_pickle=False)``);
* ``body/fits.csv`` - ``name,rms_px,ok,reason`` for every image (sorted by name);
* ``correspondence/<target_stem>__<source_stem>.npz`` - flow target -> source and the 3-class visibility
  (:func:`~glocal_cli.body.correspond.save_correspondence`) for every pair of ``pairs-train.csv``,
  ``pairs-val.csv`` and ``pairs-test.csv`` whose two fits are ok. A pair with a flagged fit gets no file
  (training falls back to the self-supervised signal for it) and is listed in the validation report
  (``pair_flagged``), as is every flagged fit (``fit_flagged``);
* with ``parsing``: ``parsing/<stem>.png`` - the 8-class parsing rendered from the fitted mesh
  (:func:`~glocal_cli.body.pair.body_parsing`), refined by a person mask where one can be had (below).

**Batches and shared shape.** Images are grouped by person (DeepFashion: the item folder; Market-1501:
the person id, junk and distractor boxes each on their own; folder: the sub-folder; SynthPeople: the
identity) and whole persons are packed, in sorted order, into units of about ``fit_batch_size`` images.
Each unit is one batched fit (:func:`~glocal_cli.body.pair.fit_poses`) in which a person's images share
one body shape. The units depend only on the dataset, so a run is deterministic, and a resumed run
refits exactly the units that lack a file (the fit of an image depends on its unit's other images: the
optimiser runs on the batch), which gives the files an uninterrupted run would have written.

**Resume.** Existing files are kept unless ``overwrite``; pairs and parsing maps of a refitted unit are
redone. ``body/state.json`` records what the fits depend on (body model, fit settings, frame,
keypoints, persons); a folder fitted with anything else is refused without ``overwrite``.

**Person mask** (``person_mask``): ``plain`` takes the photo's background to be plain (a studio wall,
white or grey, possibly a soft gradient, as in DeepFashion): the background is what a flood fill from
the top, left and right borders reaches through steps of at most 3 grey levels, starting from border
pixels within 24 levels of the border's median colour (a photo whose border is mostly not that colour has
no mask). The person is the rest, opened by 3x3 and limited to 12 % of the frame height around the fitted
body. Body pixels outside it are trimmed where they form thin strips (at most 1.5 % of the height from
their region's edge: the naked mesh a little off the person) and kept where they form thick regions
(white clothes on a white background, which the fill reaches). ``auto`` = ``plain`` for DeepFashion,
no mask for the other kinds (street scenes, user photos); ``none``: no mask.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from glocal_cli.body import load_body_model
from glocal_cli.body.config import BodyConfig
from glocal_cli.body.correspond import INVISIBLE, VISIBLE, correspondence_path, save_correspondence
from glocal_cli.body.fit import FitResult
from glocal_cli.body.pair import (
    body3d_correspondence,
    body_parsing,
    fit_poses,
    plain_background_mask,
    refine_person_mask,
    render_fits,
)
from glocal_cli.console import make_progress
from glocal_cli.data import atomic_write_text
from glocal_cli.data.correspondence import _npy_bytes, _zip_bytes
from glocal_cli.data.images import load_image
from glocal_cli.data.keypoints import Pose
from glocal_cli.data.layout import (
    BODY_DIR,
    CORRESPONDENCE_DIR,
    IMAGES_DIR,
    PARSING_DIR,
    PreparedDataset,
    pairs_file,
    read_manifest,
    read_pairs_csv,
    write_manifest,
)
from glocal_cli.data.naming import MARKET_JUNK, identity_of, is_deepfashion_name, parse_deepfashion_name
from glocal_cli.data.parsing import write_parsing
from glocal_cli.errors import ConfigError, DataError, InputError, OutputExistsError
from glocal_cli.prepare.report import ValidationReport

__all__ = [
    "BODY3D_SPLITS",
    "CORRESPONDENCE_CHOICES",
    "FITS_CSV",
    "PERSON_MASKS",
    "STATE_FILE",
    "Body3dOptions",
    "Body3dResult",
    "add_body3d",
    "dataset_pairs",
    "person_key",
    "plain_background_mask",
    "refine_person_mask",
    "run_body3d",
]

CORRESPONDENCE_CHOICES: tuple[str, ...] = ("none", "body3d")
"""``--correspondence``: no per-pair ground truth, or correspondence from fitted 3D bodies."""
PERSON_MASKS: tuple[str, ...] = ("auto", "plain", "none")
"""``--person-mask`` (refines ``--parsing body3d``): see the module docstring."""
BODY3D_SPLITS: tuple[str, ...] = ("train", "val", "test")
"""Splits whose pairs get correspondence files (``pairs-<split>.csv`` when present)."""
FITS_CSV = "fits.csv"
"""Per-image fit summary inside ``body/``."""
STATE_FILE = "state.json"
"""What the fits in ``body/`` were made with (inside ``body/``)."""

_STATE_VERSION = 1


@dataclass(frozen=True)
class Body3dOptions:
    """What the body3d stage of a preparation does."""

    correspondence: bool = False
    """Write per-pair correspondence files (``--correspondence body3d``)."""
    parsing: bool = False
    """Write parsing maps rendered from the fitted mesh (``--parsing body3d``)."""
    body: BodyConfig = field(default_factory=BodyConfig)
    """Body model (``body.model``: ``anny``, ``anny:PATH``, ``smplx:PATH``), fitting and visibility settings."""
    person_mask: str = "auto"
    """Mask that refines the body3d parsing: ``auto``, ``plain`` or ``none`` (module docstring)."""
    device: str = "cpu"
    """Device of the fits and renders (``cuda`` on a GPU machine)."""
    pair_batch_size: int = 16
    """Pairs rendered and corresponded together."""
    overwrite: bool = False
    """Redo existing fits, maps and files."""

    def __post_init__(self) -> None:
        if self.person_mask not in PERSON_MASKS:
            raise ConfigError(f"--person-mask {self.person_mask!r}: use one of {', '.join(PERSON_MASKS)}")
        if self.pair_batch_size < 1 or self.body.fit_batch_size < 1:
            raise ConfigError("body3d batch sizes must be at least 1")

    @property
    def enabled(self) -> bool:
        """Whether there is anything to do."""
        return self.correspondence or self.parsing

    def mask_mode(self, kind: str) -> str:
        """The person mask used for ``kind`` (``plain`` or ``none``)."""
        if self.person_mask == "auto":
            return "plain" if kind == "deepfashion" else "none"
        return self.person_mask


@dataclass
class Body3dResult:
    """What the body3d stage did (counts over the whole dataset; times and rates over this run's work)."""

    body_model: str
    fits: int = 0
    fits_ok: int = 0
    fitted: int = 0
    """Images fitted in this run (the others had a file)."""
    fit_s: float = 0.0
    pairs: int = 0
    """Distinct ``(target, source)`` pairs over the pair files."""
    pairs_ok: int = 0
    """Pairs whose two fits are ok (each has a correspondence file)."""
    pairs_flagged: int = 0
    pairs_written: int = 0
    """Correspondence files written in this run."""
    pair_s: float = 0.0
    visible_share: float | None = None
    """Mean share of the target body's pixels marked visible in the source (pairs written in this run)."""
    parsing_maps: int = 0
    parsing_written: int = 0
    parsing_from_flagged: int = 0
    """Parsing maps rendered from a flagged fit (every image needs one; each is in the report)."""
    masked: int = 0
    """Parsing maps of this run refined by a person mask."""
    person_mask: str = "none"
    correspondence: bool = False
    parsing: bool = False

    @property
    def fits_per_s(self) -> float:
        """Images fitted per second in this run (0 when nothing was fitted)."""
        return self.fitted / self.fit_s if self.fit_s > 0 else 0.0

    @property
    def pairs_per_s(self) -> float:
        """Correspondence files per second in this run."""
        return self.pairs_written / self.pair_s if self.pair_s > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        """The manifest's ``options.body3d`` entry."""
        d = asdict(self)
        d["fits_per_s"] = round(self.fits_per_s, 3)
        d["pairs_per_s"] = round(self.pairs_per_s, 3)
        for k in ("fit_s", "pair_s"):
            d[k] = round(d[k], 2)
        if self.visible_share is not None:
            d["visible_share"] = round(self.visible_share, 4)
        return d

    def rows(self) -> list[tuple[str, str]]:
        """``(item, value)`` rows for a CLI summary table."""
        rows = [("body model", self.body_model),
                ("body3d fits", f"{self.fits_ok} ok, {self.fits - self.fits_ok} flagged of {self.fits}"
                                + (f" ({self.fitted} fitted, {self.fits_per_s:.2f} fits/s)" if self.fitted else ""))]
        if self.correspondence:
            share = "" if self.visible_share is None else f", {100 * self.visible_share:.0f} % of body pixels visible"
            rate = f", {self.pairs_written} written at {self.pairs_per_s:.1f} pairs/s" if self.pairs_written else ""
            rows.append(("correspondence", f"{self.pairs_ok} pairs, {self.pairs_flagged} flagged (no file){rate}{share}"))
        if self.parsing:
            rows.append(("body3d parsing", f"{self.parsing_maps} maps ({self.parsing_from_flagged} from flagged fits; "
                                           f"person mask: {self.person_mask})"))
        return rows


# ------------------------------------------------------------------------------------------ persons


def person_key(kind: str, name: str, identity: str | None) -> str | None:
    """The person whose images share one body shape (``None``: the image is its own person).

    DeepFashion: the item folder (``MEN/Denim/id_00000080``, every outfit of one model); Market-1501:
    ``identity`` except junk (-1) and distractor (0000) boxes; other kinds: ``identity``.
    """
    if kind == "deepfashion":
        return parse_deepfashion_name(name).identity if is_deepfashion_name(name) else identity
    if kind == "market":
        return None if identity in MARKET_JUNK else identity
    return identity


def _units(names: Sequence[str], persons: Mapping[str, str | None], size: int) -> list[list[str]]:
    """Whole persons packed, in the order of their first image name, into units of at most ``size`` images
    (a larger person alone)."""
    groups: dict[str, list[str]] = {}
    for n in sorted(names):
        p = persons.get(n)
        groups.setdefault(f"p:{p}" if p is not None else f"i:{n}", []).append(n)
    units: list[list[str]] = []
    current: list[str] = []
    for g in groups.values():  # in the order of each person's first name
        if current and len(current) + len(g) > size:
            units.append(current)
            current = []
        current = current + g
        if len(current) >= size:
            units.append(current)
            current = []
    if current:
        units.append(current)
    return units


# ------------------------------------------------------------------------------------------ files


def _stem(name: str) -> str:
    return Path(name).stem


def fit_path(root: Path, name: str) -> Path:
    """``<root>/body/<stem>.npz``."""
    return root / BODY_DIR / f"{_stem(name)}.npz"


def _save_fit(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """One fit as a deterministic ``.npz`` (fixed zip timestamps), written atomically."""
    members = {}
    for k, v in arrays.items():
        arr = np.asarray(v)  # 0-d stays 0-d (np.ascontiguousarray would make it 1-d)
        members[f"{k}.npy"] = _npy_bytes(arr if arr.flags.c_contiguous else np.ascontiguousarray(arr))
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(_zip_bytes(members))
    os.replace(tmp, path)


def _load_fit(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            d = {k: data[k] for k in data.files}
    except (OSError, ValueError, KeyError) as e:
        raise DataError(f"{path}: cannot read the body fit ({e.__class__.__name__}: {e}); delete it to refit") from None
    need = ("global_orient", "body_pose", "shape", "camera", "rms_px", "ok", "reason", "frame")
    missing = [k for k in need if k not in d]
    if missing:
        raise DataError(f"{path}: body fit lacks {', '.join(missing)}; delete it to refit")
    return d


def _take(fits: Any, idx: Sequence[int]) -> Any:
    """The fits at ``idx`` as a new batch."""
    import torch

    i = torch.as_tensor(list(idx), dtype=torch.long)
    return FitResult(fits.global_orient[i], fits.body_pose[i], fits.shape[i], fits.camera[i], fits.rms_px[i],
                     fits.ok[i], [fits.reason[j] for j in idx], None, fits.height, fits.width)


def _state_key(options: Body3dOptions, names: Sequence[str], poses: Mapping[str, Pose],
               persons: Mapping[str, str | None], height: int, width: int) -> dict[str, Any]:
    h = hashlib.sha256()
    for n in sorted(names):
        p = poses[n]
        h.update(f"{n}|{persons.get(n)}|".encode())
        h.update(np.round(np.asarray(p.xy, np.float64), 3).tobytes())
        h.update(np.asarray(p.visible, bool).tobytes())
    cfg = options.body
    return {
        "version": _STATE_VERSION, "body_model": cfg.model, "frame": [height, width],
        "fit": json.loads(json.dumps(asdict(cfg.fit))), "fit_batch_size": cfg.fit_batch_size,
        "inputs": h.hexdigest(),
    }


def _check_state(root: Path, key: dict[str, Any], overwrite: bool) -> None:
    """Refuse fits made with other settings (or remove them with ``overwrite``), then record ``key``."""
    path = root / BODY_DIR / STATE_FILE
    stale = False
    if path.is_file():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            old = None
        if old != key:
            if not overwrite:
                what = "other keypoints or persons" if isinstance(old, dict) and old.get("inputs") != key["inputs"] \
                    else "other settings"
                if isinstance(old, dict) and old.get("body_model") != key["body_model"]:
                    what = f"body model {old.get('body_model')!r}"
                raise OutputExistsError(f"{root / BODY_DIR}: holds 3D body fits made with {what}; pass --overwrite "
                                        "to fit again")
            stale = True
    elif (root / BODY_DIR).is_dir() and any((root / BODY_DIR).glob("*.npz")) and not overwrite:
        raise OutputExistsError(f"{root / BODY_DIR}: holds body fits of unknown origin; pass --overwrite to fit again")
    if stale or overwrite:
        for sub in (BODY_DIR, CORRESPONDENCE_DIR):
            if (root / sub).is_dir():
                shutil.rmtree(root / sub)
    (root / BODY_DIR).mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(key, indent=1) + "\n")


def _write_fits_csv(path: Path, names: Sequence[str], fits: Any) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["name", "rms_px", "ok", "reason"])
    for i, n in enumerate(names):
        rms = float(fits.rms_px[i])
        w.writerow([n, f"{rms:.3f}" if np.isfinite(rms) else "nan", int(bool(fits.ok[i])), fits.reason[i]])
    atomic_write_text(path, buf.getvalue())


# ------------------------------------------------------------------------------------------ pairs


def dataset_pairs(root: Path, splits: Sequence[str] = BODY3D_SPLITS) -> list[tuple[str, str]]:
    """Distinct ``(target, source)`` pairs over ``pairs-<split>.csv`` (header ``from,to`` = source, target), sorted."""
    seen: set[tuple[str, str]] = set()
    for s in splits:
        path = root / pairs_file(s)
        if path.is_file():
            try:
                seen.update((b, a) for a, b in read_pairs_csv(path))
            except InputError as e:
                raise DataError(str(e)) from None
    return sorted(seen)


# -------------------------------------------------------------------------------------- the stage


def run_body3d(
    root: Path,
    kind: str,
    names: Sequence[str],
    poses: Mapping[str, Pose],
    persons: Mapping[str, str | None],
    pairs: Sequence[tuple[str, str]],
    height: int,
    width: int,
    options: Body3dOptions,
    report: ValidationReport,
) -> Body3dResult:
    """Fit, write fits, parsing maps and pair correspondence into the prepared folder ``root`` (module docstring).

    ``names``: every image (``images/<name>``, keypoints ``poses`` in the ``height x width`` model frame);
    ``persons``: name -> person key (:func:`person_key`); ``pairs``: ``(target, source)`` pairs.
    Problems go to ``report``; raises :class:`ConfigError` for an unusable body model,
    :class:`OutputExistsError` for fits made with other settings without ``overwrite``.
    """
    import torch

    names = sorted(names)
    stems: dict[str, str] = {}
    for n in names:
        if _stem(n) in stems:
            raise DataError(f"{root}: {stems[_stem(n)]!r} and {n!r} share the stem {_stem(n)!r}; body3d files "
                            "are named by stem")
        stems[_stem(n)] = n
    res = Body3dResult(options.body.model, correspondence=options.correspondence, parsing=options.parsing,
                       person_mask=options.mask_mode(kind))
    if not names:
        return res
    try:
        device = torch.device(options.device)
    except RuntimeError as e:
        raise ConfigError(f"--device {options.device!r}: {e}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {options.device}: CUDA is not available on this machine")
    # the cached model stays on the CPU (other users in this process); another device gets its own copy
    body = load_body_model(options.body.model) if device.type == "cpu" else \
        load_body_model(options.body.model, cache=False).to(device)
    _check_state(root, _state_key(options, names, poses, persons, height, width), options.overwrite)

    index = {n: i for i, n in enumerate(names)}
    refit: set[str] = set()
    with make_progress() as progress:
        refit, res.fit_s = _fit_all(root, body, names, poses, persons, height, width, options, progress)
        res.fitted = len(refit)
        fits = _load_all(root, names)
        _write_fits_csv(root / BODY_DIR / FITS_CSV, names, fits)
        res.fits = len(names)
        res.fits_ok = int(fits.ok.sum())
        also = "; its body3d parsing map is rendered from it all the same" if options.parsing else ""
        for i, n in enumerate(names):
            if not bool(fits.ok[i]):
                report.add("fit_flagged", n, f"3D body fit flagged: {fits.reason[i]}{also}")
        if options.parsing:
            _parsing_all(root, body, names, fits, refit, options, res, report, progress)
        if options.correspondence:
            _pairs_all(root, body, pairs, index, fits, refit, options, res, report, progress)
    return res


def _fit_all(root: Path, body: Any, names: Sequence[str], poses: Mapping[str, Pose],
             persons: Mapping[str, str | None], height: int, width: int, options: Body3dOptions,
             progress: Any) -> tuple[set[str], float]:
    units = _units(names, persons, options.body.fit_batch_size)
    todo = [u for u in units if options.overwrite or not all(fit_path(root, n).is_file() for n in u)]
    bar = progress.add_task("body3d fits", total=len(names), status=f"{options.body.model}")
    progress.update(bar, advance=len(names) - sum(len(u) for u in todo))
    refit: set[str] = set()
    start = time.perf_counter()
    for unit in todo:
        ids: dict[str, int] = {}
        pid = [ids.setdefault(f"p:{persons.get(n)}" if persons.get(n) is not None else f"i:{n}", len(ids))
               for n in unit]
        cfg = replace(options.body, fit_batch_size=len(unit))
        fits = fit_poses(body, [poses[n] for n in unit], height, width, cfg, person_ids=pid)
        for i, n in enumerate(unit):
            _save_fit(fit_path(root, n), fits.to_npz_dict(i))
        refit.update(unit)
        done = len(refit)
        rate = done / max(time.perf_counter() - start, 1e-9)
        progress.update(bar, advance=len(unit), status=f"{rate:.2f} fits/s")
    return refit, time.perf_counter() - start


def _load_all(root: Path, names: Sequence[str]) -> Any:
    items = [_load_fit(fit_path(root, n)) for n in names]
    frames = {tuple(int(v) for v in d["frame"]) for d in items}
    if len(frames) != 1:
        raise DataError(f"{root / BODY_DIR}: fits of several frames {sorted(frames)}; pass --overwrite to fit again")
    return FitResult.from_npz_dicts(items)


def _parsing_all(root: Path, body: Any, names: Sequence[str], fits: Any, refit: set[str], options: Body3dOptions,
                 res: Body3dResult, report: ValidationReport, progress: Any) -> None:
    out_dir = root / PARSING_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    need = [options.overwrite or n in refit or not (out_dir / f"{_stem(n)}.png").is_file() for n in names]
    bar = progress.add_task("body3d parsing", total=len(names), status=res.person_mask)
    progress.update(bar, advance=len(names) - sum(need))
    for idx in _fixed_batches(len(names), options.pair_batch_size, need):
        parts = render_fits(body, _take(fits, idx)).raster.part.cpu().numpy()
        done = 0
        for k, i in enumerate(idx):
            if not need[i]:
                continue
            n = names[i]
            mask = None
            if res.person_mask == "plain":
                try:
                    colour = plain_background_mask(load_image(root / IMAGES_DIR / n))
                except InputError as e:
                    raise DataError(str(e)) from None
                if colour is not None:
                    mask = refine_person_mask(colour, parts[k] > 0)
                    res.masked += 1
            write_parsing(out_dir / f"{_stem(n)}.png", body_parsing(parts[k], mask))
            res.parsing_written += 1
            done += 1
        progress.update(bar, advance=done)
    res.parsing_maps = len(names)
    res.parsing_from_flagged = int((~fits.ok).sum())


def _pairs_all(root: Path, body: Any, pairs: Sequence[tuple[str, str]], index: Mapping[str, int], fits: Any,
               refit: set[str], options: Body3dOptions, res: Body3dResult, report: ValidationReport,
               progress: Any) -> None:
    out_dir = root / CORRESPONDENCE_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    wanted: set[str] = set()
    good: list[tuple[str, str]] = []
    need: list[bool] = []
    res.pairs = len(pairs)
    for target, source in pairs:
        for n in (target, source):
            if n not in index:
                raise DataError(f"{root}: a pair names {n!r}, which has no image or keypoints")
        ti, si = index[target], index[source]
        path = correspondence_path(root, target, source)
        if not (bool(fits.ok[ti]) and bool(fits.ok[si])):
            why = "; ".join(f"{role}: {fits.reason[i]}" for role, i in (("target", ti), ("source", si))
                            if not bool(fits.ok[i]))
            report.add("pair_flagged", f"{source},{target}", f"no correspondence file: {why}")
            res.pairs_flagged += 1
            continue
        wanted.add(path.name)
        good.append((target, source))
        need.append(options.overwrite or target in refit or source in refit or not path.is_file())
    res.pairs_ok = len(good)
    for stale in sorted(out_dir.glob("*.npz")):
        if stale.name not in wanted:
            stale.unlink()
    bar = progress.add_task("body3d pairs", total=res.pairs, status="")
    progress.update(bar, advance=res.pairs - sum(need))
    shares: list[float] = []
    start = time.perf_counter()
    for idx in _fixed_batches(len(good), options.pair_batch_size, need):
        batch = [good[i] for i in idx]
        geo = body3d_correspondence(body, _take(fits, [index[t] for t, _ in batch]),
                                    _take(fits, [index[src] for _, src in batch]), options.body)
        vis = geo.visibility
        n_vis = (vis == VISIBLE).sum((1, 2))
        n_body = n_vis + (vis == INVISIBLE).sum((1, 2))
        counts = _pair_counts(n_vis, n_body)
        written = 0
        for k, (target, source) in enumerate(batch):
            if not need[idx[k]]:
                continue
            save_correspondence(correspondence_path(root, target, source), geo.flow[k], vis[k])
            if counts[k][1] > 0:
                shares.append(counts[k][0] / counts[k][1])
            written += 1
        res.pairs_written += written
        rate = res.pairs_written / max(time.perf_counter() - start, 1e-9)
        progress.update(bar, advance=written, status=f"{rate:.1f} pairs/s")
    res.pair_s = time.perf_counter() - start
    res.visible_share = float(np.mean(shares)) if shares else None


def _fixed_batches(n: int, size: int, need: Sequence[bool]) -> list[list[int]]:
    """The batches ``[0, size), [size, 2 size), ...`` of ``n`` items that hold an item in ``need``.

    Batches are fixed by position, not by what is left to do: a batched render or fit is not bitwise
    independent of its batch companions (BLAS blocking), so a resumed run recomputes a missing file
    in the batch the uninterrupted run computed it in and writes the same bytes.
    """
    return [list(range(s, min(s + size, n))) for s in range(0, n, size) if any(need[s:s + size])]


def _pair_counts(n_vis: Any, n_body: Any) -> list[tuple[int, int]]:
    """``[(visible, body)]`` pixel counts per pair (one device-to-host copy per batch)."""
    both = np.stack([n_vis.cpu().numpy(), n_body.cpu().numpy()], 1)
    return [(int(a), int(b)) for a, b in both]


# ------------------------------------------------------------------------ on a prepared dataset


def _identity_guess(kind: str, name: str) -> str | None:
    """The identity of an image of a finished dataset, from its name (folder: the sub-folder prefix)."""
    if kind == "folder":
        head, sep, _ = name.rpartition("__")
        return head if sep else None
    try:
        return identity_of(name)
    except InputError:
        return None


def add_body3d(root: str | os.PathLike[str], options: Body3dOptions, report: ValidationReport | None = None,
               identity: Callable[[str], str | None] | None = None) -> Body3dResult:
    """Run the body3d stage on a finished prepared dataset and record it in its manifest.

    What ``prepare-data synthetic --correspondence body3d`` runs after rendering; it works on any kind.
    ``identity``: name -> identity (default: from the names). The problems (flagged fits and pairs) go to
    ``body/validation-report.{md,json}`` (the dataset's own report is left as it is). Refuses
    ``--parsing body3d`` on a folder that has parsing maps from elsewhere (they would be replaced).
    """
    ds = PreparedDataset(root)
    m = ds.manifest
    if options.parsing and m.has_parsing and m.parsing_source != "body3d":
        raise ConfigError(f"{ds.root}: already has parsing maps ({m.parsing_source or m.kind}); --parsing body3d "
                          "is the fallback for data without any")
    names: list[str] = []
    for s in ("train", "test"):
        if ds.has_split(s):
            names += ds.names(s)
    names = sorted(set(names))
    kp = ds.keypoints()
    missing = [n for n in names if n not in kp]
    if missing:
        raise DataError(f"{ds.keypoints_path}: no keypoints for {missing[0]!r}")
    ident = identity or (lambda n: _identity_guess(m.kind, n))
    persons = {n: person_key(m.kind, n, ident(n)) for n in names}
    report = report if report is not None else ValidationReport(f"glocal prepare-data {m.kind} (body3d)")
    result = run_body3d(ds.root, m.kind, names, kp, persons, dataset_pairs(ds.root), ds.height, ds.width, options,
                        report)
    record_body3d(ds.root, result)
    report.write(ds.root / BODY_DIR)
    return result


def record_body3d(root: Path, result: Body3dResult) -> None:
    """Update ``manifest.json`` with a body3d result (``has_correspondence``, parsing, ``options.body3d``)."""
    m = read_manifest(root)
    changes: dict[str, Any] = {"options": {**m.options, "body3d": result.to_json()}}
    if result.correspondence:
        changes["has_correspondence"] = True
    if result.parsing:
        changes.update(has_parsing=True, parsing_source="body3d")
    write_manifest(root, replace(m, **changes))

