"""``prepare-data folder``: a folder of a user's own photos -> the prepared layout.

Every image under ``--images`` (recursively) is a photo of one person. Keypoints come from a
detector backend (or from ``--annotations`` in the photos' own pixels); the person is located from
the keypoints and centred in the frame (cropped around the person when the photo is much wider or
taller than the frame). Dataset names are the relative paths with ``/`` turned into ``__``.
Photos in the same sub-folder show the same person: pairs are generated within a sub-folder
(photos directly under ``--images`` are each their own person). All images go to one split
(``--split``, ``test`` by default, for batch inference; ``train`` for fine-tuning).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from glocal_cli.data.images import IMAGE_SUFFIXES
from glocal_cli.errors import ConfigError, InputError
from glocal_cli.prepare.engine import PairPlan, PrepareOptions, PrepareResult, run_preparation
from glocal_cli.prepare.report import ValidationReport
from glocal_cli.prepare.sources import photo_annotations, source_items

__all__ = ["FOLDER_CARD", "folder_name", "prepare_folder"]

FOLDER_CARD = (
    "A user's own photos, prepared by glocal: person located from the detected keypoints and centred in "
    "the frame (aspect preserved, white padding). Licence: whatever applies to the photos themselves."
)


def folder_name(rel: Path) -> str:
    """Dataset name of a photo: its relative path with ``/`` -> ``__`` (``:`` and spaces -> ``_``)."""
    name = "__".join(rel.parts)
    return name.replace(":", "_").replace(" ", "_")


def prepare_folder(
    images: Path,
    options: PrepareOptions,
    split: str = "test",
    annotations: Sequence[Path] = (),
) -> PrepareResult:
    """Prepare the photos under ``images`` into ``options.out``; see the module docstring."""
    if split not in ("train", "test"):
        raise ConfigError(f"--split {split!r}: use train or test")
    report = ValidationReport("glocal prepare-data folder")
    root = Path(images)
    if not root.is_dir():
        raise InputError(f"{root}: images folder not found")
    found: dict[str, tuple[Path, str]] = {}
    for path in sorted(root.rglob("*")):
        if path.is_dir() or any(part.startswith(".") for part in path.relative_to(root).parts):
            continue
        rel = path.relative_to(root)
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            report.add("unexpected_layout", rel, "not an image file (ignored)")
            continue
        name = folder_name(rel)
        if name in found:
            report.add("duplicate_name", rel, f"gives {name}, already given by {found[name][0].relative_to(root)}")
            continue
        identity = str(rel.parent) if len(rel.parts) > 1 else f"photo/{rel.stem}"
        found[name] = (path, identity)
    if not found:
        raise InputError(f"{root}: no image found (suffixes {', '.join(IMAGE_SUFFIXES)})")
    options = photo_annotations(options, annotations)
    identity_of = {n: ident for n, (_, ident) in found.items()}
    sources = {n: p for n, (p, _) in found.items()}
    split_of = dict.fromkeys(found, split)
    items = source_items(options, sources, split_of, identity_of.__getitem__,
                         lambda n: str(found[n][0].relative_to(root)))
    plans = [PairPlan(s, None if s == split else [], identity=identity_of.__getitem__) for s in ("train", "test")]
    return run_preparation("folder", items, plans, options, report, FOLDER_CARD, locate_person=True)
