"""Steps the ``deepfashion``, ``market`` and ``folder`` kinds share between discovery and the engine.

Each kind discovers its own source images; these helpers then find the community split files,
apply the keypoint annotations (community CSVs or a folder of pose JSON files), build the
:class:`~glocal_cli.prepare.engine.SourceItem` list and the pair plans.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from glocal_cli.data.keypoints import Pose, read_keypoint_csv
from glocal_cli.data.layout import read_pairs_csv
from glocal_cli.errors import InputError
from glocal_cli.prepare.engine import PairPlan, PrepareOptions, SourceItem
from glocal_cli.prepare.report import ValidationReport

__all__ = [
    "apply_annotations",
    "community_pair_plans",
    "find_split_files",
    "json_annotations",
    "photo_annotations",
    "source_items",
]


def find_split_files(split_dir: Path | None) -> dict[str, Path]:
    """Community files in ``split_dir``: keys ``train.lst``, ``test.lst``, ``pairs-train``,
    ``pairs-test``, ``annotation-train``, ``annotation-test`` (either spelling, fasion/fashion)."""
    if split_dir is None:
        return {}
    if not split_dir.is_dir():
        raise InputError(f"{split_dir}: --split-dir not found")
    out: dict[str, Path] = {}
    for s in ("train", "test"):
        if (split_dir / f"{s}.lst").is_file():
            out[f"{s}.lst"] = split_dir / f"{s}.lst"
        for what in ("pairs", "annotation"):
            hits = sorted(p for p in split_dir.glob(f"*{what}-{s}*.csv"))
            if hits:
                out[f"{what}-{s}"] = hits[0]
    return out


def json_annotations(options: PrepareOptions, annotations: Sequence[Path], what: str) -> PrepareOptions:
    """``--keypoints json``: ``options`` with the pose-JSON folder (``annotations[0]``) in its spec.

    ``what`` says in the error which pose each JSON file holds (e.g. ``"image, in its raw pixels"``).
    """
    spec = options.keypoints
    folder = Path(annotations[0]) if annotations else spec.annotations
    if folder is None or isinstance(folder, tuple):
        raise InputError(f"--keypoints json needs --annotations DIR (one pose JSON per {what})")
    return replace(options, keypoints=replace(spec, annotations=folder, frame=None))


def photo_annotations(options: PrepareOptions, annotations: Sequence[Path]) -> PrepareOptions:
    """``options`` with user keypoints given in each photo's own pixels: ``--keypoints csv`` takes the CSVs of
    ``annotations`` (no frame), ``--keypoints json`` the folder of pose JSON files; a detector backend is
    returned as it is (the kinds without community annotations: ``folder``, ``ccp``)."""
    spec = options.keypoints
    if spec.name == "csv":
        if not annotations:
            raise InputError("--keypoints csv needs --annotations FILE (keypoints in each photo's own pixels)")
        return replace(options, keypoints=replace(spec, annotations=tuple(annotations), frame=None))
    if spec.name == "json":
        return json_annotations(options, annotations, "photo")
    return options


def apply_annotations(
    options: PrepareOptions,
    annotations: Sequence[Path],
    files: Mapping[str, Path],
    split_of: dict[str, str],
    shown: Mapping[str, Path],
    report: ValidationReport,
    frame: str,
    csv_hint: str,
) -> tuple[PrepareOptions, dict[str, str]]:
    """Apply the keypoint annotations of a benchmark kind; returns ``(options, split_of)``.

    ``--keypoints csv`` merges the community CSVs (``annotations``, then the ``annotation-*`` entries
    of ``files``; the first row of a name wins), reports rows for unknown images and images without
    a row, keeps only annotated images in ``split_of`` and records the CSVs and their ``frame`` in
    the backend spec. ``--keypoints json`` takes the folder of pose JSON files. Any detector backend
    leaves the CSVs unused (noted in the report). ``shown``: name -> path shown in the report;
    ``csv_hint``: the community CSV file pattern named when none is given.
    """
    spec = options.keypoints
    csvs = list(annotations) + [files[k] for k in ("annotation-train", "annotation-test") if k in files]
    if spec.name == "csv":
        if not csvs:
            raise InputError(f"--keypoints csv needs --annotations FILE or a --split-dir holding {csv_hint}")
        merged: dict[str, Pose] = {}
        for path in csvs:
            for n, pose in read_keypoint_csv(path).items():
                if n not in shown:
                    report.add("unknown_csv_row", f"{path.name}:{n}", "annotation row for an image not in the raw data")
                merged.setdefault(n, pose)
        for n in split_of:
            if n not in merged:
                report.add("no_keypoints", shown[n], f"{n} has no row in {', '.join(p.name for p in csvs)}")
        split_of = {n: s for n, s in split_of.items() if n in merged}
        options = replace(options, keypoints=replace(spec, annotations=tuple(csvs), frame=frame))
    elif spec.name == "json":
        options = json_annotations(options, annotations, "image, in its raw pixels")
    elif csvs:
        report.add("note", csvs[0], f"annotation CSVs not used: --keypoints {spec.name} detects the keypoints")
    return options, split_of


def source_items(
    options: PrepareOptions,
    sources: Mapping[str, Path],
    split_of: Mapping[str, str],
    identity: Callable[[str], str],
    shown: Callable[[str], str],
) -> list[SourceItem]:
    """One :class:`SourceItem` per name of ``split_of`` (sorted), with its parsing file when
    ``options.parsing_dir`` is set (``<parsing_dir>/<name stem>.png``)."""
    return [
        SourceItem(
            name=n, source=sources[n], identity=identity(n), split=split_of[n],
            parsing=(options.parsing_dir / f"{Path(n).stem}.png") if options.parsing_dir else None,
            shown=shown(n),
        )
        for n in sorted(split_of)
    ]


def community_pair_plans(
    files: Mapping[str, Path],
    pairs_test: Path | None,
    identity: Callable[[str], str],
    exclude_identities: tuple[str, ...] = (),
) -> list[PairPlan]:
    """Train and test pair plans: the community pairs CSV when there is one (``pairs_test`` takes
    precedence for the test split), otherwise pairs generated within each identity."""
    plans = []
    for s in ("train", "test"):
        source = pairs_test if (s == "test" and pairs_test is not None) else files.get(f"pairs-{s}")
        if source is not None:
            plans.append(PairPlan(s, read_pairs_csv(source), source=source.name))
        else:
            plans.append(PairPlan(s, None, identity=identity, exclude_identities=exclude_identities))
    return plans
