"""Split and pair generation invariants, the validation report, option parsing, landmark mappings."""

from __future__ import annotations

import json

import numpy as np
import pytest

from glocal_cli.data.backends import BackendSpec, make_backend
from glocal_cli.data.backends.mediapipe_backend import BLAZEPOSE_NAMES, blazepose_to_coco18
from glocal_cli.data.backends.mmpose_backend import coco17_to_coco18
from glocal_cli.data.keypoints import COCO17_NAMES, KEYPOINT_NAMES, Pose
from glocal_cli.data.naming import identity_of
from glocal_cli.data.parsing import LIP20_TO_8
from glocal_cli.errors import ConfigError, InputError
from glocal_cli.prepare.engine import parse_size, parsing_table
from glocal_cli.prepare.pairs import filter_pairs, generate_pairs, split_by_identity
from glocal_cli.prepare.report import ValidationReport


def _names() -> list[str]:
    names = []
    for item in range(12):
        for clothes in ("01", "02"):
            for view in ("1front", "2side", "3back", "4full")[: 1 + (item % 4)]:
                names.append(f"fashionWOMENDressesid{item:08d}{clothes}_{view}.jpg")
    return names


def test_split_by_identity_has_no_shared_identity_and_is_seeded():
    names = _names()
    train, test = split_by_identity(names, identity_of, test_fraction=0.25, seed=3)
    assert sorted(train + test) == sorted(names)
    assert {identity_of(n) for n in train}.isdisjoint({identity_of(n) for n in test})
    assert len(test) >= 0.25 * len(names)
    assert (train, test) == split_by_identity(names, identity_of, 0.25, seed=3)
    assert split_by_identity(names, identity_of, 0.25, seed=4) != (train, test)
    assert split_by_identity(names, identity_of, 0.0, seed=3) == (sorted(names), [])


def test_generated_pairs_stay_within_one_identity():
    names = _names()
    pairs = generate_pairs(names, identity_of, seed=0)
    assert pairs, "expected pairs"
    for a, b in pairs:
        assert a != b
        assert identity_of(a) == identity_of(b)
    # every ordered pair of each identity, once
    groups: dict[str, int] = {}
    for n in names:
        groups[identity_of(n)] = groups.get(identity_of(n), 0) + 1
    assert len(pairs) == sum(k * (k - 1) for k in groups.values())
    assert len(set(pairs)) == len(pairs)
    assert pairs == generate_pairs(names, identity_of, seed=0)
    capped = generate_pairs(names, identity_of, seed=0, max_per_identity=2)
    assert all(sum(1 for a, _ in capped if identity_of(a) == g) <= 2 for g in groups)


def test_pairs_exclude_images_with_mostly_missing_keypoints():
    names = _names()
    sparse = "fashionWOMENDressesid0000000301_2side.jpg"
    assert sparse in names
    poses = {n: Pose(np.full((18, 2), 10.0), np.ones(18, bool)) for n in names}
    vis = np.zeros(18, bool)
    vis[:3] = True
    poses[sparse] = Pose(np.full((18, 2), 10.0), vis)
    pairs = generate_pairs(names, identity_of, seed=0, poses=poses, min_keypoints=9)
    assert all(sparse not in p for p in pairs)
    assert any(sparse in p for p in generate_pairs(names, identity_of, seed=0, poses=poses))


def test_excluded_identities_give_no_pairs():
    names = ["0001_c1s1_000001_01.jpg", "0001_c2s1_000002_01.jpg", "-1_c1s1_000003_01.jpg", "-1_c2s1_000004_01.jpg"]
    pairs = generate_pairs(names, identity_of, seed=0, exclude_identities=["market/-1"])
    assert sorted(pairs) == [(names[0], names[1]), (names[1], names[0])]


def test_filter_pairs_splits_kept_and_dropped():
    kept, dropped = filter_pairs([("a", "b"), ("a", "c")], ["a", "b"])
    assert kept == [("a", "b")] and dropped == [("a", "c")]


def test_report_lists_every_path_in_json_and_markdown(tmp_path):
    rep = ValidationReport("t")
    rep.add("corrupt_image", "img/MEN/x.jpg", "truncated")
    for i in range(30):
        rep.add("no_person", f"p{i}.jpg", "nobody")
    md, js = rep.write(tmp_path)
    data = json.loads(js.read_text())
    assert data["counts"] == {"corrupt_image": 1, "no_person": 30}
    assert [p["path"] for p in data["problems"]["no_person"]] == [f"p{i}.jpg" for i in range(30)]
    text = md.read_text()
    assert "img/MEN/x.jpg" in text and "and 5 more" in text
    with pytest.raises(ValueError):
        rep.add("bogus", "x", "y")


def test_parse_size_and_parsing_tables():
    assert parse_size("256x176") == (256, 176)
    assert parse_size("512X352") == (512, 352)
    for bad in ("256", "256x175", "axb", "0x4"):
        with pytest.raises(ConfigError):
            parse_size(bad)
    assert parsing_table("spl8", None) is None
    assert parsing_table("lip20", None) == LIP20_TO_8
    assert parsing_table("remap", "0:0,1:2,2:1") == (0, 2, 1)
    with pytest.raises(ConfigError):
        parsing_table("remap", None)
    with pytest.raises(InputError):
        parsing_table("remap", "0:9")
    with pytest.raises(ConfigError):
        parsing_table("other", None)


def test_blazepose_mapping_by_name_and_neck_from_shoulders():
    rng = np.random.default_rng(0)
    lm = np.concatenate([rng.uniform(0.1, 0.9, (33, 2)), np.ones((33, 1))], axis=1)
    pose = blazepose_to_coco18(lm, 200, 100, min_visibility=0.5)
    for i, name in enumerate(KEYPOINT_NAMES):
        if name == "neck":
            continue
        j = BLAZEPOSE_NAMES.index(name)
        assert pose.xy[i] == pytest.approx([lm[j, 0] * 100 - 0.5, lm[j, 1] * 200 - 0.5], abs=1e-3)
    rs, ls = KEYPOINT_NAMES.index("r_shoulder"), KEYPOINT_NAMES.index("l_shoulder")
    assert pose.xy[1] == pytest.approx((pose.xy[rs] + pose.xy[ls]) / 2, abs=1e-3)
    lm[BLAZEPOSE_NAMES.index("l_shoulder"), 2] = 0.1  # invisible -> l_shoulder and neck missing
    lm[BLAZEPOSE_NAMES.index("nose"), 0] = 1.5  # outside the image -> missing
    pose = blazepose_to_coco18(lm, 200, 100, min_visibility=0.5)
    assert not pose.visible[ls] and not pose.visible[1] and not pose.visible[0]
    assert pose.num_visible == 15


def test_coco17_mapping_to_coco18():
    xy17 = np.stack([np.arange(17) * 3.0, np.arange(17) * 5.0], axis=1)
    sc = np.linspace(0.5, 1.0, 17)
    pose = coco17_to_coco18(xy17, sc, min_score=0.3)
    for i, name in enumerate(KEYPOINT_NAMES):
        if name != "neck":
            assert tuple(pose.xy[i]) == tuple(xy17[COCO17_NAMES.index(name)])
    assert pose.num_visible == 18
    sc[COCO17_NAMES.index("r_shoulder")] = 0.1
    assert coco17_to_coco18(xy17, sc, 0.3).num_visible == 16


def test_backend_spec_rejects_unknown_names_and_csv_needs_a_file():
    with pytest.raises(ConfigError):
        BackendSpec("openpose")
    with pytest.raises(ConfigError):
        make_backend("csv")
    with pytest.raises(ConfigError):
        make_backend("mmpose")


def test_person_crop_box_centres_the_person_with_the_frame_aspect():
    from glocal_cli.prepare.engine import person_crop_box

    xy = np.array([[300.0, 40.0], [340.0, 200.0]] + [[320.0, 120.0]] * 16)
    pose = Pose(xy, np.ones(18, bool))
    x0, y0, x1, y1 = person_crop_box(pose, 256, 640, 256, 176)
    assert y0 <= 40 - 0.12 * 160 + 1 and y1 >= 200 + 0.12 * 160 - 1  # keypoint box + 12% of the height
    assert abs((y0 + y1) / 2 - 120) <= 1
    assert abs((x1 - x0) / (y1 - y0) - 176 / 256) < 0.01
    assert abs((x0 + x1) / 2 - 320) <= 1
    # near the border the box shifts to stay inside the photo
    x0, y0, x1, y1 = person_crop_box(pose.transform(1, 1, -290, 0), 256, 640, 256, 176)
    assert x0 == 0 and x1 >= 50 and abs((x1 - x0) / (y1 - y0) - 176 / 256) < 0.01
    assert person_crop_box(Pose.missing(), 100, 50, 256, 176) == (0, 0, 50, 100)


def test_white_side_padding_is_trimmed_but_content_is_kept():
    from glocal_cli.prepare.engine import _trim_side_padding

    padded = np.full((256, 256, 3), 255, np.uint8)
    padded[:, 40:216] = 90
    assert _trim_side_padding(padded, 256, 176).shape == (256, 176, 3)
    assert (_trim_side_padding(padded, 256, 176) == 90).all()
    wide_photo = np.full((256, 256, 3), 90, np.uint8)
    assert _trim_side_padding(wide_photo, 256, 176).shape == (256, 256, 3)


def test_auto_backend_explains_what_to_install(monkeypatch):
    import glocal_cli.data.backends as backends
    from glocal_cli.errors import NotAvailableError

    monkeypatch.setattr(backends, "backend_status", lambda: {"mediapipe": (False, "no mediapipe"), "mmpose": (False, "no mmpose")})
    with pytest.raises(NotAvailableError, match="no mediapipe.*no mmpose"):
        backends.resolve_auto(BackendSpec("auto"))
    monkeypatch.setattr(backends, "backend_status", lambda: {"mediapipe": (True, ""), "mmpose": (True, "")})
    assert backends.resolve_auto(BackendSpec("auto")).name == "mediapipe"
    assert backends.resolve_auto(BackendSpec("auto", mmpose_config="x.py")).name == "mmpose"
