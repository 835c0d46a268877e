"""The validation split carved from the training people (issue 13, item 3)."""

from __future__ import annotations

import pytest

from glocal_cli.prepare.pairs import carve_validation, person_identity


def _synth_pairs(people: int, poses: int) -> list[tuple[str, str]]:
    names = {p: [f"synth_id{p:05d}_{k:02d}.png" for k in range(poses)] for p in range(people)}
    return [(a, b) for group in names.values() for a in group for b in group if a != b]


def test_people_and_images_are_disjoint_and_the_draw_is_deterministic():
    pairs = _synth_pairs(40, 3)
    train, val = carve_validation(pairs, 0.1)
    assert carve_validation(pairs, 0.1) == (train, val)  # no seed, same answer
    val_people = {person_identity(n) for p in val for n in p}
    train_people = {person_identity(n) for p in train for n in p}
    assert len(val_people) == 4 and not val_people & train_people
    assert len(train) + len(val) == len(pairs) and set(train) | set(val) == set(pairs)
    # round-robin: the first 4 validation pairs show 4 different people
    assert len({person_identity(v[0]) for v in val[:4]}) == 4
    # adding people keeps most of the earlier draw (stable per-person draws)
    _, val_more = carve_validation(_synth_pairs(44, 3), 0.1)
    assert len(val_people & {person_identity(n) for p in val_more for n in p}) >= 3


def test_deepfashion_outfits_of_one_person_stay_together():
    a = [f"fashionWOMENDressesid0000{k:04d}{c:02d}_1front.jpg" for k in range(6) for c in (1, 2)]
    b = [n.replace("_1front", "_2side") for n in a]
    pairs = list(zip(a, b))  # community pairs join photos of one outfit (item + clothes index)
    train, val = carve_validation(pairs, 0.34)
    items = lambda ps: {person_identity(n) for p in ps for n in p}  # noqa: E731
    assert len(items(val)) == 2 and not items(val) & items(train)  # both outfits of an item move together


def test_names_without_identity_follow_the_pairs_and_edge_cases():
    pairs = [("p0__a.png", "p0__b.png"), ("p0__b.png", "p0__c.png"), ("p1__a.png", "p1__b.png")]
    train, val = carve_validation(pairs, 0.5)
    images = lambda ps: {n for p in ps for n in p}  # noqa: E731
    assert len(val) in (1, 2) and not images(train) & images(val)  # the chain a-b-c is one component
    assert carve_validation(pairs, 0.0) == (pairs, [])
    assert carve_validation(pairs[:1], 0.5) == (pairs[:1], [])  # one person: train keeps it
    with pytest.raises(ValueError, match="fraction"):
        carve_validation(pairs, 1.0)
