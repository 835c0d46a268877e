"""The validation split: people carved out of the training split, written beside it.

``<DIR>/val.lst`` and ``<DIR>/pairs-val.csv`` hold the validation images and pairs that model
selection uses (periodic validation and the best checkpoint of ``glocal train``); ``pairs-test.csv``
stays for ``glocal eval``. The validation people are drawn from the training split by
:func:`~glocal_cli.prepare.pairs.carve_validation` (deterministic, no seed), and
``pairs-train.csv`` is left as it is: the trainer trains on the training pairs that touch no
``val.lst`` image. ``prepare-data`` writes the split; ``glocal train`` writes it on first use into
datasets made before it existed (and SynthPeople folders).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from glocal_cli.data.layout import list_file, pairs_file, write_list, write_pairs_csv
from glocal_cli.prepare.pairs import DEFAULT_VAL_FRACTION, carve_validation, person_identity

__all__ = ["VAL_SPLIT", "ValidationSplit", "carve_validation_split", "remove_validation_split",
           "write_validation_split"]

VAL_SPLIT = "val"
"""Name of the validation split (``val.lst``, ``pairs-val.csv``)."""


@dataclass(frozen=True)
class ValidationSplit:
    """Validation pairs carved from training pairs, and the images they use."""

    pairs: list[tuple[str, str]]
    """``(from, to)`` validation pairs, round-robin over the people."""
    names: list[str]
    """Sorted image names of the validation pairs (``val.lst``)."""
    people: int
    """Number of people (components) in the split."""


def carve_validation_split(train_pairs: list[tuple[str, str]],
                           fraction: float = DEFAULT_VAL_FRACTION) -> ValidationSplit:
    """The validation split of ``train_pairs`` (nothing is written)."""
    _, val = carve_validation(train_pairs, fraction)
    names = sorted({n for pair in val for n in pair})
    people = len({person_identity(n) or n for n in names}) if val else 0
    return ValidationSplit(val, names, people)


def write_validation_split(directory: str | os.PathLike[str], split: ValidationSplit) -> tuple[Path, Path]:
    """Write ``val.lst`` and ``pairs-val.csv`` into ``directory`` (atomically); returns both paths."""
    root = Path(directory)
    lst, csv = root / list_file(VAL_SPLIT), root / pairs_file(VAL_SPLIT)
    write_list(lst, split.names)
    write_pairs_csv(csv, split.pairs)
    return lst, csv


def remove_validation_split(directory: str | os.PathLike[str]) -> None:
    """Delete ``val.lst`` and ``pairs-val.csv`` (a re-preparation replaces them)."""
    root = Path(directory)
    for name in (list_file(VAL_SPLIT), pairs_file(VAL_SPLIT)):
        (root / name).unlink(missing_ok=True)
