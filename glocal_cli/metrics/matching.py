"""Pairing generated images with their ground truth: folders matched by name rule, or panel images.

Name rules, tried in this order for each generated file (``stem`` = name without its extension):

1. ``same-name``: a reference with the same file name, or the same stem (``x.png`` <-> ``x.jpg``);
2. ``gfla-vis``: ``<from>_2_<to>_vis.png`` (GFLA, PISE, PIDM outputs);
3. ``patn-vis``: ``<from>___<to>_vis.png`` (PATN outputs);
4. ``from_to``: ``<from>_<to>.png``, where ``<to>`` may keep its extension (``A.jpg_B.jpg.png``).

Names contain underscores themselves, so rules 2-4 never split at a fixed position: every split
point is tried and the candidate ``<to>`` that names an existing reference wins (the longest one
for rule 4). A ``--reference`` that is a prepared dataset folder (``manifest.json`` + ``images/``)
is read from its ``images/``; its ``pairs-test.csv`` then tells which test pairs have no output.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from glocal_cli.errors import InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
"""File suffixes read as images (case-insensitive)."""
PANEL_ROLES = ("source", "target", "output", "-")
"""Panel names of --panels: target = ground truth, output = generated, source and - are ignored."""


@dataclass(frozen=True)
class ImageRef:
    """An image file, or a box (a panel) of one."""

    path: Path
    """Image file."""
    box: tuple[int, int, int, int] | None = None
    """(left, top, right, bottom) crop in pixels, or None for the whole image."""

    def load(self) -> np.ndarray:
        """The image as an H x W x 3 uint8 array (InputError naming the file when unreadable)."""
        try:
            with Image.open(self.path) as im:
                im = im.convert("RGB")
                if self.box is not None:
                    im = im.crop(self.box)
                return np.asarray(im, dtype=np.uint8).copy()
        except (OSError, ValueError) as exc:
            raise InputError(f"{self.path}: cannot read image ({exc})") from exc

    def cache_entry(self) -> str:
        """Identity used by the FID statistics cache: name, size and box."""
        try:
            size = self.path.stat().st_size
        except OSError:
            size = -1
        box = "" if self.box is None else ":" + ",".join(map(str, self.box))
        return f"{self.path.name}:{size}{box}"

    def __str__(self) -> str:
        if self.box is None:
            return str(self.path)
        return f"{self.path}[{self.box[0]}:{self.box[2]}]"


@dataclass(frozen=True)
class ImagePair:
    """One evaluated pair."""

    name: str
    """Display name: the generated file name, or the panel file's stem."""
    generated: ImageRef
    """The generated image."""
    reference: ImageRef
    """Its ground truth."""
    rule: str
    """The name rule (or ``panels``) that paired them."""


@dataclass
class MatchResult:
    """Pairs found, and what could not be paired."""

    pairs: list[ImagePair]
    """Matched pairs, sorted by name."""
    unmatched_generated: list[str] = field(default_factory=list)
    """Generated files that no rule paired with a reference."""
    unmatched_reference: list[str] = field(default_factory=list)
    """Reference files that no generated file points at."""
    missing_expected: list[str] = field(default_factory=list)
    """Pairs of a prepared dataset's pairs-test.csv without a generated image (``<from>_<to>``)."""
    reference_dir: Path | None = None
    """Folder the reference images were read from."""
    dataset_dir: Path | None = None
    """The prepared dataset folder, when --reference was one."""

    def rule_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for p in self.pairs:
            counts[p.rule] = counts.get(p.rule, 0) + 1
        return counts


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name."""
    return sorted(
        (p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES),
        key=lambda p: p.name,
    )


def is_prepared_dataset(folder: Path) -> bool:
    """A folder written by ``prepare-data`` (``manifest.json`` and ``images/``)."""
    return (folder / "manifest.json").is_file() and (folder / "images").is_dir()


def _strip_suffix(name: str) -> str:
    p = Path(name)
    return p.stem if p.suffix.lower() in IMAGE_SUFFIXES else name


class _ReferenceIndex:
    def __init__(self, files: list[Path]) -> None:
        self.by_name = {p.name: p for p in files}
        self.by_stem: dict[str, Path] = {}
        for p in files:
            self.by_stem.setdefault(p.stem, p)

    def find(self, candidate: str) -> Path | None:
        if not candidate:
            return None
        if candidate in self.by_name:
            return self.by_name[candidate]
        return self.by_stem.get(_strip_suffix(candidate))


def _split_candidates(core: str, sep: str) -> list[str]:
    """Every ``<to>`` obtained by splitting ``core`` at one occurrence of ``sep`` (non-empty <from>)."""
    out = []
    start = core.find(sep, 1)
    while start != -1:
        out.append(core[start + len(sep):])
        start = core.find(sep, start + 1)
    return out


def match_name(generated_name: str, index: _ReferenceIndex) -> tuple[Path, str] | None:
    """(reference path, rule) for one generated file name, or None."""
    hit = index.find(generated_name)
    if hit is not None:
        return hit, "same-name"
    stem = _strip_suffix(generated_name)
    hit = index.by_stem.get(stem)
    if hit is not None:
        return hit, "same-name"
    if stem.endswith("_vis"):
        core = stem[: -len("_vis")]
        for sep, rule in (("_2_", "gfla-vis"), ("___", "patn-vis")):
            for to in _split_candidates(core, sep):
                hit = index.find(to)
                if hit is not None:
                    return hit, rule
    for to in _split_candidates(stem, "_"):  # earliest split first = longest <to>
        hit = index.find(to)
        if hit is not None:
            return hit, "from_to"
    return None


def _expected_pairs(dataset: Path) -> list[tuple[str, str]]:
    path = dataset / "pairs-test.csv"
    if not path.is_file():
        return []
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, csv.Error) as exc:
        raise InputError(f"{path}: cannot read pairs ({exc})") from exc
    if rows and not {"from", "to"} <= set(rows[0]):
        raise InputError(f"{path}: header must be 'from,to'")
    return [(r["from"], r["to"]) for r in rows]


def match_folders(generated_dir: str | Path, reference_dir: str | Path) -> MatchResult:
    """Pair every image in ``generated_dir`` with one in ``reference_dir`` by the name rules."""
    gen_dir = Path(generated_dir)
    ref_root = Path(reference_dir)
    for folder, opt in ((gen_dir, "--generated"), (ref_root, "--reference")):
        if not folder.is_dir():
            raise InputError(f"{folder}: {opt} is not a folder")
    dataset = ref_root if is_prepared_dataset(ref_root) else None
    ref_dir = ref_root / "images" if dataset else ref_root
    gen_files = list_images(gen_dir)
    ref_files = list_images(ref_dir)
    if not gen_files:
        raise InputError(f"{gen_dir}: no images (png, jpg, jpeg, bmp, webp) in --generated")
    if not ref_files:
        raise InputError(f"{ref_dir}: no images (png, jpg, jpeg, bmp, webp) in --reference")
    index = _ReferenceIndex(ref_files)
    pairs: list[ImagePair] = []
    unmatched: list[str] = []
    used: set[Path] = set()
    for g in gen_files:
        hit = match_name(g.name, index)
        if hit is None:
            unmatched.append(g.name)
            continue
        ref, rule = hit
        used.add(ref)
        pairs.append(ImagePair(name=g.name, generated=ImageRef(g), reference=ImageRef(ref), rule=rule))
    missing: list[str] = []
    if dataset is not None:
        have = {_strip_suffix(p.name) for p in pairs}
        for src, dst in _expected_pairs(dataset):
            key = f"{src}_{dst}"
            alt = f"{_strip_suffix(src)}_{_strip_suffix(dst)}"
            if key not in have and alt not in have and f"{alt}_vis" not in have:
                missing.append(key)
    return MatchResult(
        pairs=pairs,
        unmatched_generated=unmatched,
        unmatched_reference=[p.name for p in ref_files if p not in used],
        missing_expected=missing,
        reference_dir=ref_dir,
        dataset_dir=dataset,
    )


def parse_panel_layout(layout: str | Sequence[str]) -> tuple[str, ...]:
    """Validate ``--panels`` (e.g. ``source,target,output``): one target and one output."""
    items = tuple(s.strip() for s in (layout.split(",") if isinstance(layout, str) else layout))
    bad = [s for s in items if s not in PANEL_ROLES]
    if bad or items.count("target") != 1 or items.count("output") != 1:
        raise InputError(
            f"--panels {','.join(items)}: list panels left to right as source, target, output or - "
            f"(exactly one target and one output)"
        )
    return items


def split_panels(panel_dir: str | Path, layout: str | Sequence[str] = "source,target,output",
                 pad: int = 0) -> MatchResult:
    """Pairs from panel images: each file is cut into ``len(layout)`` equal-width panels.

    ``pad`` pixels are removed from the left and right of every panel (40 for the DeepFashion
    samples, 176-wide images padded to 256). The ``target`` panel is the reference, ``output`` the
    generated image.
    """
    roles = parse_panel_layout(layout)
    folder = Path(panel_dir)
    if not folder.is_dir():
        raise InputError(f"{folder}: --panel-dir is not a folder")
    files = list_images(folder)
    if not files:
        raise InputError(f"{folder}: no images (png, jpg, jpeg, bmp, webp) in --panel-dir")
    pairs = []
    unmatched = []
    n = len(roles)
    for f in files:
        try:
            with Image.open(f) as im:
                width, height = im.size
        except OSError as exc:
            raise InputError(f"{f}: cannot read image ({exc})") from exc
        if width % n:
            unmatched.append(f.name)
            continue
        pw = width // n
        if pw - 2 * pad <= 0:
            raise InputError(f"{f}: --panel-pad {pad} leaves nothing of {pw}-pixel-wide panels")
        boxes = {role: (i * pw + pad, 0, (i + 1) * pw - pad, height) for i, role in enumerate(roles)}
        pairs.append(
            ImagePair(
                name=f.stem,
                generated=ImageRef(f, boxes["output"]),
                reference=ImageRef(f, boxes["target"]),
                rule="panels",
            )
        )
    if not pairs:
        raise InputError(f"{folder}: no image width is divisible into {n} panels (--panels {','.join(roles)})")
    return MatchResult(pairs=pairs, unmatched_generated=unmatched, reference_dir=folder)
