"""The prepared dataset folder that every ``prepare-data`` kind writes and every consumer reads.

::

    <DIR>/manifest.json          format "glocal-dataset", format_version 1, kind, height, width, ...
    <DIR>/images/<name>          RGB images in the model frame (H x W); <name> = benchmark name
    <DIR>/parsing/<stem>.png     uint8 label map, 8 canonical classes (optional: has_parsing; where they
                                 come from: parsing_source, e.g. ``body3d`` = rendered from the fitted body)
    <DIR>/keypoints.csv          community CSV (y first, -1 missing) in the model frame
    <DIR>/train.lst, test.lst    image names, one per line
    <DIR>/pairs-train.csv, pairs-test.csv   header ``from,to``
    <DIR>/val.lst, pairs-val.csv  validation people carved from the training split (model selection;
                                  the trainer leaves their pairs out of training; pairs-test.csv is
                                  for ``glocal eval`` only): see ``glocal_cli.prepare.validation``
    <DIR>/surface/<stem>.npz     ground-truth body-surface coordinates (synthetic only: has_surface)
    <DIR>/correspondence/<target_stem>__<source_stem>.npz   per-pair ground truth from fitted 3D bodies
                                 (has_correspondence, or the folder exists): ``flow`` float16 (H, W, 2)
                                 pixel offsets target -> source (``source_xy = (col, row) + flow``),
                                 ``visibility`` uint8 (H, W): 0 background, 1 visible in the source,
                                 2 invisible there; a pair without a file has no ground truth (a pair
                                 with a flagged fit: see validation-report.json, ``pair_flagged``)
    <DIR>/body/<stem>.npz        the 3D body fitted to each image's keypoints (``prepare-data ...
                                 --correspondence body3d`` or ``--parsing body3d``): ``global_orient``
                                 (3,), ``body_pose`` (P, 3), ``shape`` (S,), ``camera`` (3,) = (scale
                                 px/m, tx, ty) in the model frame, ``rms_px``, ``ok``, ``reason``,
                                 ``frame`` (H, W); ``body/fits.csv``: name,rms_px,ok,reason per image

Problems with a folder raise :class:`~glocal_cli.errors.DataError` naming the path.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from glocal_cli.data import atomic_write_text
from glocal_cli.data.keypoints import KeypointFrame, Pose, read_keypoint_csv
from glocal_cli.errors import DataError, InputError

__all__ = [
    "DATASET_FORMAT",
    "DATASET_FORMAT_VERSION",
    "DATASET_KINDS",
    "IMAGES_DIR",
    "KEYPOINTS_FILE",
    "MANIFEST_FILE",
    "PAIRS_HEADER",
    "BODY_DIR",
    "CORRESPONDENCE_DIR",
    "PARSING_DIR",
    "SURFACE_DIR",
    "DatasetManifest",
    "PreparedDataset",
    "list_file",
    "pairs_file",
    "read_list",
    "read_manifest",
    "read_pairs_csv",
    "write_list",
    "write_manifest",
    "write_pairs_csv",
]

DATASET_FORMAT = "glocal-dataset"
"""Value of ``manifest.json``'s ``format`` key."""
DATASET_FORMAT_VERSION = 1
"""Layout version this code reads and writes."""
DATASET_KINDS: tuple[str, ...] = ("synthetic", "deepfashion", "market", "folder", "ccp")
"""Known ``kind`` values (who prepared the folder)."""

MANIFEST_FILE = "manifest.json"
IMAGES_DIR = "images"
PARSING_DIR = "parsing"
SURFACE_DIR = "surface"
CORRESPONDENCE_DIR = "correspondence"
"""Folder of the per-pair 3D-body correspondence files (the one definition; ``glocal_cli.body.correspond`` uses it)."""
BODY_DIR = "body"
"""Folder of the per-image 3D body fits and ``fits.csv``."""
KEYPOINTS_FILE = "keypoints.csv"
PAIRS_HEADER = ("from", "to")

_SPLIT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


def list_file(split: str) -> str:
    """File name of a split's image list: ``train.lst``."""
    _check_split(split)
    return f"{split}.lst"


def pairs_file(split: str) -> str:
    """File name of a split's pairs: ``pairs-train.csv``."""
    _check_split(split)
    return f"pairs-{split}.csv"


def _check_split(split: str) -> None:
    if not _SPLIT.match(split):
        raise ValueError(f"split {split!r} must be a simple name like 'train' or 'test'")


# -------------------------------------------------------------------------------------- manifest


@dataclass(frozen=True)
class DatasetManifest:
    """Contents of ``manifest.json``."""

    kind: str
    """Who prepared the folder: one of :data:`DATASET_KINDS`."""
    height: int
    """Model frame height of every image, parsing map and keypoint."""
    width: int
    """Model frame width."""
    counts: dict[str, int] = field(default_factory=dict)
    """Counts for the dataset card, e.g. ``{"train": 48674, "test": 4038, "pairs-test": 8570}``."""
    seed: int | None = None
    """Seed used to prepare the folder (synthetic rendering, pair sampling), if any."""
    glocal_version: str = ""
    """Version of glocal that wrote the folder."""
    options: dict[str, Any] = field(default_factory=dict)
    """The preparation options (JSON-friendly), for reproducibility."""
    has_parsing: bool = False
    """Whether ``parsing/<stem>.png`` exists for every image."""
    has_surface: bool = False
    """Whether ``surface/<stem>.npz`` exists for every image (synthetic data)."""
    has_correspondence: bool = False
    """Whether ``correspondence/<target_stem>__<source_stem>.npz`` ground truth exists (for the pairs whose
    3D fits were good; a pair without a file has none)."""
    parsing_source: str = ""
    """Where the parsing maps come from: ``body3d`` (rendered from the 3D body fitted to the keypoints, the
    fallback for data without parsing), ``import`` (``--parsing DIR``), or ``""`` (the kind's own maps, e.g.
    SynthPeople's exact ones, or no maps)."""
    card: str = ""
    """Dataset card text: source, licence, preparation steps."""
    format: str = DATASET_FORMAT
    """Always ``"glocal-dataset"``."""
    format_version: int = DATASET_FORMAT_VERSION
    """Layout version."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON object written to ``manifest.json`` (format keys first)."""
        d = asdict(self)
        return {"format": d.pop("format"), "format_version": d.pop("format_version"), **d}

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = MANIFEST_FILE) -> DatasetManifest:
        """Validate and build from a parsed ``manifest.json`` (:class:`DataError` naming ``where``)."""
        if not isinstance(data, dict):
            raise DataError(f"{where}: expected a JSON object")
        if data.get("format") != DATASET_FORMAT:
            raise DataError(
                f"{where}: format is {data.get('format')!r}, not {DATASET_FORMAT!r}; not a glocal dataset"
            )
        version = data.get("format_version")
        if not isinstance(version, int) or version > DATASET_FORMAT_VERSION or version < 1:
            raise DataError(
                f"{where}: format_version {version!r} is not supported (this glocal reads {DATASET_FORMAT_VERSION})"
            )
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise DataError(f"{where}: unknown keys {', '.join(unknown)}")
        for key in ("kind", "height", "width"):
            if key not in data:
                raise DataError(f"{where}: missing key {key!r}")
        if data["kind"] not in DATASET_KINDS:
            raise DataError(f"{where}: kind {data['kind']!r} is not one of {', '.join(DATASET_KINDS)}")
        for key in ("height", "width"):
            if not isinstance(data[key], int) or isinstance(data[key], bool) or data[key] <= 0:
                raise DataError(f"{where}: {key} must be a positive integer, got {data[key]!r}")
        for key in ("has_parsing", "has_surface", "has_correspondence"):
            if key in data and not isinstance(data[key], bool):
                raise DataError(f"{where}: {key} must be true or false, got {data[key]!r}")
        if not isinstance(data.get("parsing_source", ""), str):
            raise DataError(f"{where}: parsing_source must be a string, got {data['parsing_source']!r}")
        for key in ("counts", "options"):
            if key in data and not isinstance(data[key], dict):
                raise DataError(f"{where}: {key} must be an object")
        return cls(**data)


def write_manifest(
    directory: str | os.PathLike[str], manifest: DatasetManifest | None = None, **kwargs: Any
) -> Path:
    """Write ``<directory>/manifest.json`` atomically; give a manifest or its fields as keywords."""
    if manifest is None:
        if "glocal_version" not in kwargs:
            from glocal_cli import __version__

            kwargs["glocal_version"] = __version__
        manifest = DatasetManifest(**kwargs)
    elif kwargs:
        raise TypeError("write_manifest: pass either a manifest or keyword fields, not both")
    DatasetManifest.from_dict(manifest.to_dict(), where="manifest to write")
    path = Path(directory) / MANIFEST_FILE
    atomic_write_text(path, json.dumps(manifest.to_dict(), indent=2, sort_keys=False) + "\n")
    return path


def read_manifest(directory: str | os.PathLike[str]) -> DatasetManifest:
    """Read and validate ``<directory>/manifest.json``."""
    root = Path(directory)
    path = root / MANIFEST_FILE
    if not root.is_dir():
        raise DataError(f"{root}: dataset folder not found")
    if not path.is_file():
        raise DataError(f"{path}: missing; not a prepared dataset (run `glocal prepare-data`)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read ({e.__class__.__name__}: {e})") from None
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: not valid JSON (line {e.lineno}: {e.msg})") from None
    return DatasetManifest.from_dict(data, where=str(path))


# -------------------------------------------------------------------------------- lists and pairs


def write_list(path: str | os.PathLike[str], names: Iterable[str]) -> None:
    """Write image names one per line, atomically."""
    items = list(names)
    for n in items:
        if not n or "\n" in n or n != n.strip():
            raise ValueError(f"cannot store image name {n!r} in a list file")
    atomic_write_text(path, "".join(f"{n}\n" for n in items))


def read_list(path: str | os.PathLike[str]) -> list[str]:
    """Read image names, one per line (blank lines skipped, surrounding spaces stripped)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{p}: cannot read list ({e.__class__.__name__}: {e})") from None
    return [line.strip() for line in text.splitlines() if line.strip()]


def write_pairs_csv(path: str | os.PathLike[str], pairs: Iterable[Sequence[str]]) -> None:
    """Write ``(from, to)`` pairs with the header ``from,to``, atomically."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(PAIRS_HEADER)
    for pair in pairs:
        if len(pair) != 2:
            raise ValueError(f"a pair needs two names, got {pair!r}")
        writer.writerow(pair)
    atomic_write_text(path, buf.getvalue())


def read_pairs_csv(path: str | os.PathLike[str], extra_columns: bool = False) -> list[tuple[str, str]]:
    """Read a ``from,to`` CSV; a wrong header or a row without two names raises :class:`InputError`.

    ``extra_columns``: accept (and ignore) columns after the first two, in the header and the rows
    (user-made pair files for inference); the prepared layout's files have exactly two.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{p}: cannot read pairs ({e.__class__.__name__}: {e})") from None
    rows = csv.reader(io.StringIO(text))
    header = next(rows, None)
    if header is None or tuple(h.strip() for h in (header[:2] if extra_columns else header)) != PAIRS_HEADER:
        raise InputError(f"{p}: row 1: expected header 'from,to', got {','.join(header or [])!r}")
    pairs = []
    for row_number, row in enumerate(rows, start=2):
        if not row or all(not c.strip() for c in row):
            continue
        if (len(row) < 2 if extra_columns else len(row) != 2) or not row[0].strip() or not row[1].strip():
            raise InputError(f"{p}: row {row_number}: expected two names 'from,to', got {','.join(row)!r}")
        pairs.append((row[0].strip(), row[1].strip()))
    return pairs


# --------------------------------------------------------------------------------- the folder


class PreparedDataset:
    """A validated prepared dataset folder.

    Construction checks the manifest and the presence of ``images/``, ``keypoints.csv`` and, when
    the manifest announces them, ``parsing/`` and ``surface/``; :meth:`check` additionally checks
    that every listed name has its files. Keypoints, lists and pairs are read lazily and cached.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.manifest = read_manifest(self.root)
        required = [self.images_dir, self.keypoints_path]
        if self.has_parsing:
            required.append(self.root / PARSING_DIR)
        if self.has_surface:
            required.append(self.root / SURFACE_DIR)
        if self.manifest.has_correspondence:
            required.append(self.root / CORRESPONDENCE_DIR)
        for path in required:
            if not path.exists():
                raise DataError(f"{path}: missing from the prepared dataset {self.root}")
        self._keypoints: dict[str, Pose] | None = None
        self._names: dict[str, list[str]] = {}
        self._pairs: dict[str, list[tuple[str, str]]] = {}

    def __repr__(self) -> str:
        return f"PreparedDataset({str(self.root)!r}, kind={self.kind!r}, {self.height}x{self.width})"

    # -- manifest views

    @property
    def kind(self) -> str:
        """Who prepared the folder (``synthetic``, ``deepfashion``, ``market``, ``folder``)."""
        return self.manifest.kind

    @property
    def height(self) -> int:
        """Frame height of the images."""
        return self.manifest.height

    @property
    def width(self) -> int:
        """Frame width of the images."""
        return self.manifest.width

    @property
    def has_parsing(self) -> bool:
        """Whether parsing maps exist."""
        return self.manifest.has_parsing

    @property
    def has_surface(self) -> bool:
        """Whether ground-truth surface coordinates exist."""
        return self.manifest.has_surface

    @property
    def has_correspondence(self) -> bool:
        """Whether per-pair ground-truth correspondence exists (manifest flag, or the folder is there)."""
        return self.manifest.has_correspondence or (self.root / CORRESPONDENCE_DIR).is_dir()

    # -- paths

    @property
    def images_dir(self) -> Path:
        """``<root>/images``."""
        return self.root / IMAGES_DIR

    @property
    def keypoints_path(self) -> Path:
        """``<root>/keypoints.csv``."""
        return self.root / KEYPOINTS_FILE

    def image_path(self, name: str) -> Path:
        """``<root>/images/<name>``."""
        return self.images_dir / name

    def parsing_path(self, name: str) -> Path:
        """``<root>/parsing/<stem>.png`` (raises :class:`DataError` when the folder has no parsing)."""
        if not self.has_parsing:
            raise DataError(f"{self.root}: this dataset has no parsing maps (manifest has_parsing is false)")
        return self.root / PARSING_DIR / f"{Path(name).stem}.png"

    def surface_path(self, name: str) -> Path:
        """``<root>/surface/<stem>.npz`` (raises :class:`DataError` when the folder has no surface data)."""
        if not self.has_surface:
            raise DataError(
                f"{self.root}: this dataset has no surface coordinates (manifest has_surface is false)"
            )
        return self.root / SURFACE_DIR / f"{Path(name).stem}.npz"

    def correspondence_path(self, target: str, source: str) -> Path:
        """``<root>/correspondence/<target_stem>__<source_stem>.npz`` (it may not exist for every pair)."""
        return self.root / CORRESPONDENCE_DIR / f"{Path(target).stem}__{Path(source).stem}.npz"

    # -- contents

    def keypoints(self) -> dict[str, Pose]:
        """``{name: Pose}`` in the model frame, read once and cached."""
        if self._keypoints is None:
            frame = KeypointFrame(self.height, self.width, name="model")
            try:
                self._keypoints = read_keypoint_csv(self.keypoints_path, frame=frame)
            except InputError as e:
                raise DataError(str(e)) from None
        return self._keypoints

    def pose(self, name: str) -> Pose:
        """The pose of one image (:class:`DataError` when ``keypoints.csv`` lacks it)."""
        kp = self.keypoints()
        if name not in kp:
            raise DataError(f"{self.keypoints_path}: no keypoints for {name!r}")
        return kp[name]

    def has_split(self, split: str) -> bool:
        """Whether ``<split>.lst`` exists."""
        return (self.root / list_file(split)).is_file()

    def names(self, split: str) -> list[str]:
        """Image names of a split (``<root>/<split>.lst``), cached."""
        if split not in self._names:
            path = self.root / list_file(split)
            if not path.is_file():
                raise DataError(f"{path}: missing; this dataset has no {split!r} split")
            try:
                self._names[split] = read_list(path)
            except InputError as e:
                raise DataError(str(e)) from None
        return self._names[split]

    def pairs(self, split: str) -> list[tuple[str, str]]:
        """``(from, to)`` pairs of a split (``<root>/pairs-<split>.csv``), cached."""
        if split not in self._pairs:
            path = self.root / pairs_file(split)
            if not path.is_file():
                raise DataError(f"{path}: missing; this dataset has no {split!r} pairs")
            try:
                self._pairs[split] = read_pairs_csv(path)
            except InputError as e:
                raise DataError(str(e)) from None
        return self._pairs[split]

    def check(self, splits: Sequence[str] = ("train", "test")) -> dict[str, int]:
        """Deep check: every listed name has an image, keypoints and (when announced) parsing and
        surface files, and every pair's names are in the split. Returns ``{split: count}``;
        raises :class:`DataError` naming the first missing path. Splits without a list are skipped.
        """
        images = {p.name for p in self.images_dir.iterdir()}
        kp = self.keypoints()
        counts: dict[str, int] = {}
        for split in splits:
            if not self.has_split(split):
                continue
            names = self.names(split)
            listed = set(names)
            for name in names:
                if name not in images:
                    raise DataError(f"{self.image_path(name)}: listed in {list_file(split)} but missing")
                if name not in kp:
                    raise DataError(
                        f"{self.keypoints_path}: no keypoints for {name!r} (listed in {list_file(split)})"
                    )
                if self.has_parsing and not self.parsing_path(name).is_file():
                    raise DataError(f"{self.parsing_path(name)}: missing (manifest has_parsing is true)")
                if self.has_surface and not self.surface_path(name).is_file():
                    raise DataError(f"{self.surface_path(name)}: missing (manifest has_surface is true)")
            if (self.root / pairs_file(split)).is_file():
                for a, b in self.pairs(split):
                    for n in (a, b):
                        if n not in listed:
                            raise DataError(
                                f"{self.root / pairs_file(split)}: {n!r} is not in {list_file(split)}"
                            )
            counts[split] = len(names)
        return counts
