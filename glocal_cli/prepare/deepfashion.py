"""``prepare-data deepfashion``: the raw DeepFashion In-shop download -> the prepared layout.

Raw layout: ``<raw>/img_highres/`` or ``<raw>/img/`` (or ``<raw>`` itself) holding
``MEN|WOMEN/<category>/id_<8 digits>/<nn>_<view>_<pose>.jpg``; ``img_highres`` is preferred when
both exist (a sharper source for the resize). Files are renamed to the community's benchmark names
(:func:`~glocal_cli.data.naming.deepfashion_name_from_path`).

Splits and pairs come from the community files when given (``--split-dir`` with ``train.lst``,
``test.lst``, ``fasion-pairs-*.csv`` / ``fashion-pairs-*.csv``, ``fasion-annotation-*.csv``; or
``--pairs`` / ``--annotations``), so results compare with published numbers; otherwise they are
generated: split by outfit identity without overlap, pairs within one identity, seeded. The
community annotation CSV is in the 256x256 padded frame (x + 40); its keypoints are converted to
the model frame.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from glocal_cli.data.images import IMAGE_SUFFIXES
from glocal_cli.data.layout import read_list
from glocal_cli.data.naming import deepfashion_name_from_path, identity_of
from glocal_cli.errors import InputError
from glocal_cli.prepare.engine import PrepareOptions, PrepareResult, run_preparation
from glocal_cli.prepare.pairs import split_by_identity
from glocal_cli.prepare.report import ValidationReport
from glocal_cli.prepare.sources import (
    apply_annotations,
    community_pair_plans,
    find_split_files,
    source_items,
)

__all__ = ["DEEPFASHION_ANNOTATION_FRAME", "DEEPFASHION_CARD", "find_split_files", "prepare_deepfashion"]

DEEPFASHION_ANNOTATION_FRAME = "deepfashion-256x256"
"""Frame of the community's DeepFashion keypoint CSVs (256x256, 40 px padding left and right)."""

DEEPFASHION_CARD = (
    "DeepFashion In-shop Clothes Retrieval Benchmark (Liu et al., CVPR 2016), prepared for pose transfer "
    "with the community's naming and splits. Licence: the DeepFashion agreement (non-commercial research "
    "only); these prepared files inherit it. Steps: raw photo -> side padding trimmed when it is white -> "
    "aspect-preserving resize into the frame (padding white) -> keypoints converted to the frame."
)


def _find_root(raw: Path, report: ValidationReport) -> Path:
    if not raw.is_dir():
        raise InputError(f"{raw}: DeepFashion raw folder not found")
    for sub in ("img_highres", "img"):
        if (raw / sub).is_dir():
            if sub == "img_highres" and (raw / "img").is_dir():
                report.add("note", raw / sub, "both img/ and img_highres/ exist; using img_highres/ (sharper)")
            return raw / sub
    if (raw / "MEN").is_dir() or (raw / "WOMEN").is_dir():
        return raw
    raise InputError(
        f"{raw}: unexpected layout: no img/, img_highres/ or MEN/ WOMEN/ folder "
        "(expected <raw>/img/MEN|WOMEN/<category>/id_xxxxxxxx/NN_V_view.jpg)"
    )


def discover_deepfashion(raw: Path, report: ValidationReport) -> tuple[Path, dict[str, Path]]:
    """``(image root, {benchmark name: file})``; odd files and duplicate names go to the report."""
    root = _find_root(raw, report)
    found: dict[str, Path] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for fname in sorted(filenames):
            path = Path(dirpath) / fname
            rel = path.relative_to(root)
            if fname.startswith("."):
                continue
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                report.add("unexpected_layout", rel, "not an image file")
                continue
            if len(rel.parts) != 4:
                report.add("unexpected_layout", rel, "expected MEN|WOMEN/<category>/id_xxxxxxxx/<file>")
                continue
            try:
                name = deepfashion_name_from_path(str(rel))
            except InputError as e:
                report.add("unexpected_layout", rel, str(e))
                continue
            if name in found:
                report.add("duplicate_name", rel, f"gives {name}, already given by {found[name].relative_to(root)}")
                continue
            found[name] = path
    return root, found


def prepare_deepfashion(
    raw: Path,
    options: PrepareOptions,
    split_dir: Path | None = None,
    annotations: Sequence[Path] = (),
    pairs_test: Path | None = None,
) -> PrepareResult:
    """Prepare DeepFashion In-shop from ``raw`` into ``options.out``; see the module docstring.

    ``annotations``: community keypoint CSVs (256x256 padded frame) used by ``--keypoints csv``
    (together with ``annotation-*.csv`` found in ``split_dir``); ``pairs_test``: a test pairs CSV
    that takes precedence over the one in ``split_dir``.
    """
    report = ValidationReport("glocal prepare-data deepfashion")
    root, found = discover_deepfashion(Path(raw), report)
    if not found:
        raise InputError(f"{root}: no DeepFashion image found (expected MEN|WOMEN/<category>/id_xxxxxxxx/NN_V_view.jpg)")
    files = find_split_files(split_dir)
    if split_dir is not None:
        for key in ("train.lst", "test.lst", "pairs-train", "pairs-test"):
            if key not in files:
                report.add("missing_split_file", split_dir / key, f"{key} not found in --split-dir; generated instead")

    # -- splits
    split_of: dict[str, str] = {}
    lists = {s: read_list(files[f"{s}.lst"]) for s in ("train", "test") if f"{s}.lst" in files}
    if lists:
        for s, names in lists.items():
            for n in names:
                if n not in found:
                    report.add("missing_image", n, f"listed in {files[f'{s}.lst'].name} but not in {root}")
                elif n in split_of:
                    report.add("duplicate_name", n, f"listed in both {split_of[n]}.lst and {s}.lst; kept in {split_of[n]}")
                else:
                    split_of[n] = s
        if len(lists) == 1:
            (given,) = lists
            other = "test" if given == "train" else "train"
            report.add("note", files[f"{given}.lst"], f"only {given}.lst given: every other image goes to {other}")
            given_ids = {identity_of(n) for n in lists[given]}
            for n in found:
                if n not in split_of:
                    if identity_of(n) in given_ids:
                        report.add("not_in_split", n, f"its identity is in {given}.lst but the image is not (skipped)")
                    else:
                        split_of[n] = other
        else:
            for n in sorted(found):
                if n not in split_of:
                    report.add("not_in_split", found[n].relative_to(root), f"{n} is in neither train.lst nor test.lst")
    else:
        train, test = split_by_identity(found, identity_of, options.test_fraction, options.seed)
        split_of = {**{n: "train" for n in train}, **{n: "test" for n in test}}
        report.add("note", root, f"split generated by outfit identity (seed {options.seed}, test share {options.test_fraction})")

    # -- keypoints
    shown = {n: path.relative_to(root) for n, path in found.items()}
    options, split_of = apply_annotations(options, annotations, files, split_of, shown, report,
                                          DEEPFASHION_ANNOTATION_FRAME, "fasion-annotation-*.csv")
    items = source_items(options, found, split_of, identity_of, lambda n: str(found[n].relative_to(root.parent)))
    plans = community_pair_plans(files, pairs_test, identity_of)
    return run_preparation("deepfashion", items, plans, options, report, DEEPFASHION_CARD, trim_padding=True)
