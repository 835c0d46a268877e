"""``prepare-data market``: the raw Market-1501 download -> the prepared layout (128x64 crops).

Two layouts are read as they are:

- the raw download: ``<raw>/bounding_box_train/`` (the train split), ``<raw>/bounding_box_test/`` and
  ``<raw>/query/`` (together the test split, as in the community's pose-transfer benchmark);
- the benchmark layout (as in ``../shared/data/market1501``): ``<raw>/train/`` and ``<raw>/test/`` photo
  folders with the community CSVs beside them (``market-annotation-{train,test}.csv``, a
  ``market-pairs-test*.csv``), found there without ``--split-dir``/``--annotations``/``--pairs``. Of several
  test-pair files, the one whose pairs all have their photos is used (the 1,000-pair subset when only its
  photos are there).

Names ``PPPP_cCsS_FFFFFF_BB.jpg`` keep their Market-1501 names. Identity ``-1`` (junk boxes) and
``0000`` (distractors) are prepared like every crop but never paired. The community annotation
CSVs are in the 128x64 frame; the community pair files (``market-pairs-*.csv``) are used when
given, otherwise pairs are generated within each person, seeded.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from glocal_cli.data.images import IMAGE_SUFFIXES
from glocal_cli.data.layout import read_pairs_csv
from glocal_cli.data.naming import MARKET_JUNK, identity_of, is_market_name
from glocal_cli.errors import InputError
from glocal_cli.prepare.engine import PrepareOptions, PrepareResult, run_preparation
from glocal_cli.prepare.report import ValidationReport
from glocal_cli.prepare.sources import (
    apply_annotations,
    community_pair_plans,
    find_split_files,
    source_items,
)

__all__ = ["BENCHMARK_FOLDERS", "MARKET_ANNOTATION_FRAME", "MARKET_CARD", "MARKET_FOLDERS", "prepare_market"]

MARKET_ANNOTATION_FRAME = "market-128x64"
"""Frame of the community's Market-1501 keypoint CSVs."""

MARKET_FOLDERS: dict[str, str] = {"bounding_box_train": "train", "bounding_box_test": "test", "query": "test"}
"""Raw folder -> split."""

BENCHMARK_FOLDERS: dict[str, str] = {"train": "train", "test": "test"}
"""Benchmark-layout folder -> split (``train/``, ``test/`` with the CSVs beside them)."""

MARKET_CARD = (
    "Market-1501 (Zheng et al., ICCV 2015) person crops, prepared for pose transfer at the community's "
    "128x64 frame. Licence: the Market-1501 terms (research use); these prepared files inherit them. "
    "Steps: crop -> aspect-preserving resize into the frame (padding white) -> keypoints in the frame."
)


def prepare_market(
    raw: Path,
    options: PrepareOptions,
    split_dir: Path | None = None,
    annotations: Sequence[Path] = (),
    pairs_test: Path | None = None,
) -> PrepareResult:
    """Prepare Market-1501 from ``raw`` into ``options.out`` (128x64 by default; see the module docstring)."""
    report = ValidationReport("glocal prepare-data market")
    raw = Path(raw)
    if not raw.is_dir():
        raise InputError(f"{raw}: Market-1501 raw folder not found")
    folders = MARKET_FOLDERS
    present = [f for f in folders if (raw / f).is_dir()]
    if not present:
        folders = BENCHMARK_FOLDERS
        present = [f for f in folders if (raw / f).is_dir()]
        if split_dir is None and any(raw.glob("*annotation-*.csv")):
            split_dir = raw
    if not present:
        raise InputError(f"{raw}: unexpected layout: none of {', '.join([*MARKET_FOLDERS, *BENCHMARK_FOLDERS])} found")
    for f in folders:
        if f not in present:
            report.add("missing_split_file", raw / f, f"folder {f}/ missing: its {folders[f]} images are absent")
    found: dict[str, tuple[Path, str]] = {}
    for folder in present:
        for path in sorted((raw / folder).iterdir()):
            rel = path.relative_to(raw)
            if path.name.startswith(".") or path.name == "Thumbs.db":
                continue
            if path.is_dir() or path.suffix.lower() not in IMAGE_SUFFIXES or not is_market_name(path.name):
                report.add("unexpected_layout", rel, "not a Market-1501 crop (PPPP_cCsS_FFFFFF_BB.jpg)")
                continue
            if path.name in found:
                report.add("duplicate_name", rel, f"same name as {found[path.name][0].relative_to(raw)}")
                continue
            found[path.name] = (path, folders[folder])
    if not found:
        raise InputError(f"{raw}: no Market-1501 crop found")
    files = find_split_files(split_dir)
    if pairs_test is None and split_dir is not None:
        pairs_test = _complete_test_pairs(split_dir, {n for n, (_, s) in found.items() if s == "test"})
    split_of = {n: s for n, (_, s) in found.items()}
    shown = {n: path.relative_to(raw) for n, (path, _) in found.items()}
    options, split_of = apply_annotations(options, annotations, files, split_of, shown, report,
                                          MARKET_ANNOTATION_FRAME, "market-annotation-*.csv")
    sources = {n: path for n, (path, _) in found.items()}
    items = source_items(options, sources, split_of, identity_of, lambda n: str(shown[n]))
    plans = community_pair_plans(files, pairs_test, identity_of, exclude_identities=MARKET_JUNK)
    return run_preparation("market", items, plans, options, report, MARKET_CARD)


def _complete_test_pairs(split_dir: Path, test_names: set[str]) -> Path | None:
    """The ``*pairs-test*.csv`` of ``split_dir`` whose pairs all have their photos in ``test_names``
    (the fewest pairs first wins a tie), or ``None`` when no such file is complete (the caller then
    uses its own default: the first file, every missing photo reported)."""
    for path in sorted(split_dir.glob("*pairs-test*.csv"), key=lambda p: p.stat().st_size):
        pairs = read_pairs_csv(path)
        if pairs and all(a in test_names and b in test_names for a, b in pairs):
            return path
    return None
