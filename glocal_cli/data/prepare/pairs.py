"""Splits and pairs: seeded, identity-aware, the way the community built its benchmark pairs.

The community's DeepFashion pairs join two photos of the same outfit (item folder + clothes
index, :func:`glocal_cli.data.naming.identity_of`) and its train/test split shares no outfit;
Market-1501 pairs join two crops of the same person. :func:`split_by_identity` and
:func:`generate_pairs` reproduce those rules with a seed.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence

from glocal_cli.data.keypoints import Pose

__all__ = ["filter_pairs", "generate_pairs", "group_by_identity", "split_by_identity"]


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
