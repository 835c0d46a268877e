"""Pieces of the body3d preparation stage: person keys, fit units, pair lists, the plain-background mask."""

from __future__ import annotations

import cv2
import numpy as np

from glocal_cli.data.layout import CORRESPONDENCE_DIR, write_pairs_csv
from glocal_cli.prepare.body3d import (
    _fixed_batches,
    _units,
    dataset_pairs,
    person_key,
    plain_background_mask,
    refine_person_mask,
)


def test_correspondence_folder_name_has_one_definition() -> None:
    from glocal_cli.body import correspond

    assert correspond.CORRESPONDENCE_DIR is CORRESPONDENCE_DIR


def test_person_keys_by_kind() -> None:
    a = "fashionMENDenimid0000008001_1front.jpg"
    b = "fashionMENDenimid0000008002_3back.jpg"  # another outfit of the same item folder: the same model
    assert person_key("deepfashion", a, "x") == person_key("deepfashion", b, "y") == "MEN/Denim/id_00000080"
    assert person_key("market", "0188_c2s2_149727_03.jpg", "market/0188") == "market/0188"
    assert person_key("market", "-1_c1s1_000001_01.jpg", "market/-1") is None  # junk: each box alone
    assert person_key("market", "0000_c1s1_000001_01.jpg", "market/0000") is None
    assert person_key("folder", "p1__a.jpg", "p1") == "p1"


def test_units_pack_whole_persons_in_sorted_order() -> None:
    names = [f"{p}{i}" for p in "abcd" for i in range(3)] + ["z0", "z1"]
    persons = {n: n[0] for n in names}
    persons["z0"] = persons["z1"] = None  # each its own person
    units = _units(list(reversed(names)), persons, 4)
    assert units == [["a0", "a1", "a2"], ["b0", "b1", "b2"], ["c0", "c1", "c2"], ["d0", "d1", "d2", "z0"], ["z1"]]
    assert _units(names, {n: "big" for n in names}, 4) == [sorted(names)]  # a larger person stays whole
    for u in units:
        assert len({persons[n] for n in u if persons[n] is not None} & {"a", "b"}) <= 1


def test_fixed_batches_do_not_depend_on_what_is_left() -> None:
    need = [False] * 10
    need[5] = need[9] = True
    assert _fixed_batches(10, 4, need) == [[4, 5, 6, 7], [8, 9]]
    assert _fixed_batches(10, 4, [False] * 10) == []


def test_dataset_pairs_are_target_source_and_distinct(tmp_path) -> None:
    write_pairs_csv(tmp_path / "pairs-train.csv", [("s1", "t1"), ("s2", "t2")])
    write_pairs_csv(tmp_path / "pairs-val.csv", [("s2", "t2")])
    write_pairs_csv(tmp_path / "pairs-test.csv", [("t1", "s1")])
    assert dataset_pairs(tmp_path) == [("s1", "t1"), ("t1", "s1"), ("t2", "s2")]


def _studio(h: int = 128, w: int = 88) -> tuple[np.ndarray, np.ndarray]:
    """A grey gradient wall, a dark person with a white shirt patch that touches the wall."""
    rows = np.linspace(200, 235, h)[:, None, None]
    img = np.broadcast_to(rows, (h, w, 3)).astype(np.uint8).copy()
    person = np.zeros((h, w), bool)
    person[20:120, 30:58] = True
    img[person] = (40, 50, 60)
    img[40:70, 30:50] = (236, 236, 236)  # white clothes against the light wall (open on the left side)
    img[40:70, 30:31] = (226, 226, 226)
    return img, person


def test_plain_background_mask_finds_the_person() -> None:
    img, person = _studio()
    mask = plain_background_mask(img)
    assert mask is not None
    dark = person.copy()
    dark[40:70, 30:50] = False
    halo = cv2.dilate(person.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0  # the blur's 1-pixel edge
    assert mask[dark].mean() > 0.95 and mask[~halo].mean() < 0.01
    busy = (np.random.default_rng(0).random((64, 44, 3)) * 255).astype(np.uint8)
    assert plain_background_mask(busy) is None  # no plain background: no mask


def test_refined_mask_keeps_thick_body_regions_and_trims_thin_strips() -> None:
    img, person = _studio()
    mask = plain_background_mask(img)
    body = np.zeros_like(person)
    body[18:122, 28:60] = True  # the fitted mesh: the person plus a 2-pixel rim
    refined = refine_person_mask(mask, body)
    assert refined[40:70, 32:48].all()  # the white shirt (reached by the background fill) is kept
    assert not refined[18, 40] and not refined[60, 59]  # the rim off the person is trimmed
    far = np.zeros_like(mask)
    far[0:5, 0:5] = True
    assert not refine_person_mask(mask | far, body)[0:5, 0:5].any()  # mask far from the body is dropped
