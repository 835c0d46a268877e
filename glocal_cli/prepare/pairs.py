"""Splits and pairs: seeded, identity-aware, the way the community built its benchmark pairs.

The community's DeepFashion pairs join two photos of the same outfit (item folder + clothes
index, :func:`glocal_cli.data.naming.identity_of`) and its train/test split shares no outfit;
Market-1501 pairs join two crops of the same person. :func:`split_by_identity` and
:func:`generate_pairs` reproduce those rules with a seed.
"""

from __future__ import annotations

import hashlib
import random
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence

from glocal_cli.data.keypoints import Pose
from glocal_cli.data.naming import identity_of, is_deepfashion_name, parse_deepfashion_name
from glocal_cli.errors import InputError

__all__ = [
    "DEFAULT_VAL_FRACTION",
    "carve_validation",
    "filter_pairs",
    "generate_pairs",
    "group_by_identity",
    "person_identity",
    "split_by_identity",
]

DEFAULT_VAL_FRACTION = 0.05
"""Share of the training identities carved out as the validation split (``pairs-val.csv``)."""
_VAL_SALT = "glocal-validation"


def group_by_identity(names: Iterable[str], identity: Callable[[str], str]) -> dict[str, list[str]]:
    """``{identity: sorted names}`` (identities sorted too, so the result is deterministic)."""
    groups: dict[str, list[str]] = defaultdict(list)
    for n in names:
        groups[identity(n)].append(n)
    return {k: sorted(groups[k]) for k in sorted(groups)}


def split_by_identity(
    names: Iterable[str], identity: Callable[[str], str], test_fraction: float, seed: int
) -> tuple[list[str], list[str]]:
    """Split names into ``(train, test)`` so that no identity is in both.

    Identities are shuffled with ``seed`` and taken into test until it holds at least
    ``test_fraction`` of the images (at least one identity when ``test_fraction > 0`` and there are
    two or more identities; train always keeps one). Both lists come back sorted.
    """
    if not 0.0 <= test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction}")
    groups = group_by_identity(names, identity)
    order = list(groups)
    random.Random(seed).shuffle(order)
    total = sum(len(v) for v in groups.values())
    target = test_fraction * total
    test_ids: set[str] = set()
    count = 0
    if test_fraction > 0 and len(order) >= 2:
        for ident in order[:-1]:  # the last identity always stays in train
            if count >= target:
                break
            test_ids.add(ident)
            count += len(groups[ident])
    train = sorted(n for k, v in groups.items() if k not in test_ids for n in v)
    test = sorted(n for k, v in groups.items() if k in test_ids for n in v)
    return train, test


def generate_pairs(
    names: Iterable[str],
    identity: Callable[[str], str],
    seed: int,
    poses: Mapping[str, Pose] | None = None,
    min_keypoints: int = 0,
    max_per_identity: int | None = None,
    exclude_identities: Sequence[str] = (),
) -> list[tuple[str, str]]:
    """Ordered ``(from, to)`` pairs of different images of the same identity.

    Every ordered pair within an identity is a candidate; with ``poses`` and ``min_keypoints`` an
    image with fewer visible keypoints takes part in no pair (the community dropped pairs whose
    keypoints are mostly missing); ``max_per_identity`` keeps a seeded random subset per identity;
    identities in ``exclude_identities`` (e.g. Market-1501 junk) give none. The order is
    deterministic for a seed: identities sorted, pairs shuffled within each identity.
    """
    rng = random.Random(seed)
    excluded = set(exclude_identities)
    usable = [
        n for n in names if poses is None or min_keypoints <= 0 or (n in poses and poses[n].num_visible >= min_keypoints)
    ]
    out: list[tuple[str, str]] = []
    for ident, group in group_by_identity(usable, identity).items():
        if ident in excluded or len(group) < 2:
            continue
        cands = [(a, b) for a in group for b in group if a != b]
        rng.shuffle(cands)
        if max_per_identity is not None:
            cands = cands[: max(0, max_per_identity)]
        out.extend(cands)
    return out


def filter_pairs(
    pairs: Sequence[tuple[str, str]], available: Iterable[str]
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """``(kept, dropped)``: pairs whose two names are both in ``available``, and the rest."""
    have = set(available)
    kept, dropped = [], []
    for a, b in pairs:
        (kept if a in have and b in have else dropped).append((a, b))
    return kept, dropped


def person_identity(name: str) -> str | None:
    """The *person* a benchmark name shows, for the validation split (stricter than :func:`identity_of`).

    DeepFashion: the item folder (``MEN/Denim/id_00000080``: every outfit of that person and garment);
    Market-1501: the person id; SynthPeople: the identity. ``None`` for other names (a user's folder),
    where the pairs themselves say which photos belong together.
    """
    if is_deepfashion_name(name):
        return parse_deepfashion_name(name).identity
    try:
        return identity_of(name)
    except InputError:
        return None


def carve_validation(
    pairs: Sequence[tuple[str, str]],
    fraction: float = DEFAULT_VAL_FRACTION,
    identity: Callable[[str], str | None] = person_identity,
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Split training pairs into ``(train, validation)`` with no person and no image in both.

    Photos are grouped into *components*: two photos belong together when a pair joins them or when
    ``identity`` gives them the same key. ``round(fraction x components)`` components (at least one
    when ``fraction > 0`` and there are two or more; train always keeps one) go to validation, chosen
    by a stable draw per component (sha256 of a fixed salt and the component's smallest key), so the
    split is deterministic, needs no seed, and changes little when identities are added. Train pairs
    keep their order; validation pairs come round-robin over the components (the first ``N`` pairs
    cover ``N`` different people, which is what ``train.val_pairs`` reads).
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"validation fraction must be in [0, 1), got {fraction}")
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(a: str, b: str) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    for a, b in pairs:
        union(a, b)
        for n in (a, b):
            key = identity(n)
            if key is not None:
                union(n, "\0id:" + key)  # identity keys are nodes too (no image name starts with NUL)
    comps: dict[str, list[int]] = defaultdict(list)
    for i, (a, _) in enumerate(pairs):
        comps[find(a)].append(i)
    roots = sorted(comps, key=lambda r: hashlib.sha256(f"{_VAL_SALT}:{r}".encode()).hexdigest())
    n_val = 0
    if fraction > 0 and len(roots) >= 2:
        n_val = min(max(round(len(roots) * fraction), 1), len(roots) - 1)
    val_roots = roots[:n_val]
    chosen = set(val_roots)
    train = [p for i, p in enumerate(pairs) if find(p[0]) not in chosen]
    val: list[tuple[str, str]] = []
    depth = max((len(comps[r]) for r in val_roots), default=0)
    for k in range(depth):
        val.extend(pairs[comps[r][k]] for r in val_roots if k < len(comps[r]))
    return train, val
