"""``prepare-data market``: the raw Market-1501 download -> the prepared layout (128x64 crops).

Raw layout: ``<raw>/bounding_box_train/`` (the train split), ``<raw>/bounding_box_test/`` and
``<raw>/query/`` (together the test split, as in the community's pose-transfer benchmark); names
``PPPP_cCsS_FFFFFF_BB.jpg`` keep their Market-1501 names. Identity ``-1`` (junk boxes) and
``0000`` (distractors) are prepared like every crop but never paired. The community annotation
CSVs are in the 128x64 frame; the community pair files (``market-pairs-*.csv``) are used when
given, otherwise pairs are generated within each person, seeded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from glocal_cli.data.images import IMAGE_SUFFIXES
from glocal_cli.data.keypoints import read_keypoint_csv
from glocal_cli.data.layout import read_pairs_csv
from glocal_cli.data.naming import identity_of, is_market_name
from glocal_cli.data.prepare.deepfashion import find_split_files
from glocal_cli.data.prepare.engine import (
    PairPlan,
    PrepareOptions,
    PrepareResult,
    SourceItem,
    run_preparation,
)
from glocal_cli.data.prepare.report import ValidationReport
from glocal_cli.errors import InputError

__all__ = ["MARKET_ANNOTATION_FRAME", "MARKET_CARD", "MARKET_FOLDERS", "prepare_market"]

MARKET_ANNOTATION_FRAME = "market-128x64"
"""Frame of the community's Market-1501 keypoint CSVs."""

MARKET_FOLDERS: dict[str, str] = {"bounding_box_train": "train", "bounding_box_test": "test", "query": "test"}
"""Raw folder -> split."""

MARKET_JUNK: tuple[str, ...] = ("market/-1", "market/0000")
"""Identities that are not one person (junk boxes, distractors): never paired."""

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
    present = [f for f in MARKET_FOLDERS if (raw / f).is_dir()]
    if not present:
        raise InputError(f"{raw}: unexpected layout: none of {', '.join(MARKET_FOLDERS)} found")
    for f in MARKET_FOLDERS:
        if f not in present:
            report.add("missing_split_file", raw / f, f"folder {f}/ missing: its {MARKET_FOLDERS[f]} images are absent")
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
            found[path.name] = (path, MARKET_FOLDERS[folder])
    if not found:
        raise InputError(f"{raw}: no Market-1501 crop found")
    files = find_split_files(split_dir)
    spec = options.keypoints
    split_of = {n: s for n, (_, s) in found.items()}
    csvs = list(annotations) + [files[k] for k in ("annotation-train", "annotation-test") if k in files]
    if spec.name == "csv":
        if not csvs:
            raise InputError("--keypoints csv needs --annotations FILE or a --split-dir holding market-annotation-*.csv")
        merged: dict = {}
        for path in csvs:
            for n, pose in read_keypoint_csv(path).items():
                if n not in found:
                    report.add("unknown_csv_row", f"{path.name}:{n}", "annotation row for an image not in the raw data")
                merged.setdefault(n, pose)
        for n in sorted(found):
            if n not in merged:
                report.add("no_keypoints", found[n][0].relative_to(raw), f"{n} has no annotation row")
        split_of = {n: s for n, s in split_of.items() if n in merged}
        options = replace(options, keypoints=replace(spec, annotations=tuple(csvs), frame=MARKET_ANNOTATION_FRAME))
    elif spec.name == "json":
        folder = Path(annotations[0]) if annotations else spec.annotations
        if folder is None or isinstance(folder, tuple):
            raise InputError("--keypoints json needs --annotations DIR (one pose JSON per image, in its raw pixels)")
        options = replace(options, keypoints=replace(spec, annotations=folder, frame=None))
    elif csvs:
        report.add("note", csvs[0], f"annotation CSVs not used: --keypoints {spec.name} detects the keypoints")
    items = [
        SourceItem(
            name=n, source=found[n][0], identity=identity_of(n), split=split_of[n],
            parsing=(options.parsing_dir / f"{Path(n).stem}.png") if options.parsing_dir else None,
            shown=str(found[n][0].relative_to(raw)),
        )
        for n in sorted(split_of)
    ]
    plans = []
    for s in ("train", "test"):
        source = pairs_test if (s == "test" and pairs_test is not None) else files.get(f"pairs-{s}")
        if source is not None:
            plans.append(PairPlan(s, read_pairs_csv(source), source=source.name))
        else:
            plans.append(PairPlan(s, None, identity=identity_of, exclude_identities=MARKET_JUNK))
    return run_preparation("market", items, plans, options, report, MARKET_CARD)
