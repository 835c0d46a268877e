"""``prepare-data ccp``: Clothing Co-Parsing (real street-fashion photos with pixel labels) -> the prepared layout.

Raw layout (as in ``../shared/data/ccp``): ``photos/NNNN.jpg`` (one person each), ``parsing/NNNN.png`` (pixel
labels for about half of them, values indexing ``labels.txt``: 59 classes). The labelled photos are prepared:
the person located from its keypoints and fitted into the frame, the 59 labels mapped to the 8 classes
(:data:`glocal_cli.data.parsing.CCP59_TO_8`), CCP's ``skin`` split into face, arms and legs by the nearest body
segment of the keypoints (:func:`glocal_cli.data.parsing.split_skin`). Every photo is its own person (CCP has no
pose pairs): the pairs are the photo with itself, what the semantic network's source-parsing estimate and the
inpainting stage train on. A seeded share of the photos (``--test-fraction``, by default 0.1: about 100) is
held out as the test split.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from glocal_cli.data.parsing import CCP59_NAMES
from glocal_cli.errors import InputError
from glocal_cli.prepare.engine import PairPlan, PrepareOptions, PrepareResult, run_preparation
from glocal_cli.prepare.report import ValidationReport
from glocal_cli.prepare.sources import photo_annotations, source_items

__all__ = ["CCP_CARD", "prepare_ccp"]

CCP_CARD = (
    "Clothing Co-Parsing (Yang et al., CVPR 2014; github.com/bearpaw/clothing-co-parsing), Apache-2.0: real "
    "street-fashion photos with pixel-level labels in 59 classes, mapped to the 8 classes (skin split into face, "
    "arms and legs by the keypoints). Steps: person located from its keypoints -> aspect-preserving resize into "
    "the frame (padding white) -> keypoints and parsing in the frame; pairs: each photo with itself."
)


def _check_labels(path: Path) -> None:
    """``labels.txt`` must list CCP's 59 labels in the order the class table assumes."""
    if not path.is_file():
        return
    words = path.read_text(encoding="utf-8").split()
    names = [w for w in words if not w.isdigit()]
    if tuple(names) != CCP59_NAMES:
        diff = next((i for i, (a, b) in enumerate(zip(names, CCP59_NAMES)) if a != b), min(len(names), 59))
        raise InputError(f"{path}: not Clothing Co-Parsing's 59 labels (label {diff} differs: "
                         f"{names[diff] if diff < len(names) else 'missing'!r}); this folder needs its own --remap")


def _is_test(name: str, seed: int, fraction: float) -> bool:
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def prepare_ccp(raw: Path, options: PrepareOptions, annotations: Sequence[Path] = ()) -> PrepareResult:
    """Prepare the labelled photos of the CCP folder ``raw`` into ``options.out`` (see the module docstring).

    Keypoints come from the detector of ``options.keypoints`` (CCP has none), or with ``--keypoints csv`` from
    ``annotations`` in each photo's own pixels (rows named ``ccpNNNN.jpg``)."""
    raw = Path(raw)
    report = ValidationReport("glocal prepare-data ccp")
    photos, parsing = raw / "photos", raw / "parsing"
    if not photos.is_dir() or not parsing.is_dir():
        raise InputError(f"{raw}: expected photos/ and parsing/ (Clothing Co-Parsing layout)")
    _check_labels(raw / "labels.txt")
    found = {p.stem: p for p in sorted(photos.glob("*.jpg"))}
    labelled = {p.stem for p in parsing.glob("*.png")}
    for stem in sorted(labelled - set(found)):
        report.add("unexpected_layout", f"parsing/{stem}.png", "parsing map without its photo")
    names = {f"ccp{stem}.jpg": found[stem] for stem in sorted(labelled & set(found))}
    if not names:
        raise InputError(f"{raw}: no photo with a parsing map")
    split_of = {n: ("test" if _is_test(n, options.seed, options.test_fraction) else "train") for n in names}
    options = replace(options, parsing_dir=parsing, parsing_format="ccp59", remap=None)
    options = photo_annotations(options, annotations)
    items = source_items(options, names, split_of, lambda n: f"ccp/{Path(n).stem}",
                         lambda n: str(names[n].relative_to(raw)))
    items = [replace(it, parsing=parsing / f"{names[it.name].stem}.png") for it in items]
    plans = [PairPlan(s, [(n, n) for n in sorted(names) if split_of[n] == s], source="self pairs")
             for s in ("train", "test")]
    return run_preparation("ccp", items, plans, options, report, CCP_CARD, locate_person=True)
