"""The Pose type, keypoint formats, frames, heatmaps and skeleton drawing."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from glocal_cli.data.keypoints import (
    BODY25_TO_COCO18,
    FLIP_PERMUTATION,
    FRAMES,
    KEYPOINT_COLORS,
    KEYPOINT_NAMES,
    LIMBS,
    NUM_KEYPOINTS,
    KeypointFrame,
    Pose,
    convert_frame,
    draw_skeleton,
    pose_heatmaps,
    pose_heatmaps_torch,
    pose_sigma,
    read_keypoint_csv,
    read_pose_file,
    write_coco_json,
    write_keypoint_csv,
    write_mmpose_json,
    write_openpose_json,
)
from glocal_cli.errors import InputError


def _pose(seed: int = 0, missing: tuple[int, ...] = (9, 13), height: int = 256, width: int = 176) -> Pose:
    rng = np.random.default_rng(seed)
    xy = np.stack([rng.integers(0, width, NUM_KEYPOINTS), rng.integers(0, height, NUM_KEYPOINTS)], 1)
    visible = np.ones(NUM_KEYPOINTS, bool)
    visible[list(missing)] = False
    return Pose(xy.astype(np.float32), visible)


# ---------------------------------------------------------------------------------- constants


def test_names_flip_permutation_and_limbs_are_consistent():
    assert len(KEYPOINT_NAMES) == NUM_KEYPOINTS == len(KEYPOINT_COLORS)
    assert KEYPOINT_NAMES[:2] == ("nose", "neck") and KEYPOINT_NAMES[-1] == "l_ear"
    perm = FLIP_PERMUTATION
    assert sorted(perm) == list(range(NUM_KEYPOINTS))
    assert all(perm[perm[i]] == i for i in range(NUM_KEYPOINTS))  # an involution
    for i, j in enumerate(perm):
        a, b = KEYPOINT_NAMES[i], KEYPOINT_NAMES[j]
        if a.startswith("r_"):
            assert b == "l_" + a[2:]
        elif a.startswith("l_"):
            assert b == "r_" + a[2:]
        else:
            assert i == j
    # limbs form one tree over all 18 points
    assert len(LIMBS) == NUM_KEYPOINTS - 1
    assert {i for limb in LIMBS for i in limb} == set(range(NUM_KEYPOINTS))
    # BODY-25 inserts mid-hip at 8: COCO-18 r_hip (8) is BODY-25 point 9, and 8 is never used
    assert BODY25_TO_COCO18[KEYPOINT_NAMES.index("r_hip")] == 9 and 8 not in BODY25_TO_COCO18


# ---------------------------------------------------------------------------------------- Pose


def test_pose_normalises_missing_points_and_compares_visible_ones():
    pose = Pose(np.array([[np.nan, 3.0]] + [[1.0, 2.0]] * 17), np.ones(18, bool))
    assert not pose.visible[0] and pose.num_visible == 17
    assert pose.xy.dtype == np.float32 and tuple(pose.xy[0]) == (-1.0, -1.0)
    other = Pose(np.array([[50.0, 60.0]] + [[1.0, 2.0]] * 17), np.r_[False, np.ones(17, bool)])
    assert pose == other  # the coordinates of a missing point do not matter
    assert Pose.missing().num_visible == 0 and Pose.missing().bbox() is None
    with pytest.raises(ValueError):
        Pose(np.zeros((18, 3)), np.ones(18, bool))


def test_xyv_round_trip_and_scores():
    pose = _pose()
    xyv = pose.to_xyv()
    assert xyv.shape == (18, 3) and (xyv[~pose.visible] == 0).all() and (xyv[pose.visible, 2] == 1).all()
    back = Pose.from_xyv(xyv)
    assert back.allclose(pose) and back.score is not None
    scored = Pose.from_xyv(np.c_[pose.xy, np.linspace(0.0, 1.0, 18)], min_score=0.5)
    assert scored.num_visible == int((np.linspace(0.0, 1.0, 18) > 0.5).sum())


def test_flip_twice_is_identity_and_swaps_sides():
    pose = _pose(3)
    flipped = pose.flip(176)
    assert flipped.flip(176) == pose
    r_wrist, l_wrist = KEYPOINT_NAMES.index("r_wrist"), KEYPOINT_NAMES.index("l_wrist")
    assert flipped.xy[l_wrist, 0] == 175 - pose.xy[r_wrist, 0]
    assert flipped.xy[l_wrist, 1] == pose.xy[r_wrist, 1]
    nose = KEYPOINT_NAMES.index("nose")
    assert flipped.xy[nose, 0] == 175 - pose.xy[nose, 0]
    # the flipped pose's heatmaps are the mirrored heatmaps with channels swapped
    small = _pose(4, height=32, width=24)
    maps = pose_heatmaps(small, 32, 24, 2.0)
    maps_f = pose_heatmaps(small.flip(24), 32, 24, 2.0)
    np.testing.assert_allclose(maps_f, maps[list(FLIP_PERMUTATION)][:, :, ::-1], atol=1e-6)


def test_transform_resize_clip_and_bbox():
    pose = _pose(1)
    moved = pose.transform(2.0, 0.5, 10.0, -3.0)
    np.testing.assert_allclose(moved.xy[pose.visible], pose.xy[pose.visible] * [2.0, 0.5] + [10.0, -3.0])
    assert (moved.visible == pose.visible).all()
    # resize by 2 and back is the identity; a pixel centre maps to the centre of its 2x2 block
    up = pose.resize((256, 176), (512, 352))
    assert up.resize((512, 352), (256, 176)).allclose(pose)
    assert np.allclose(up.xy[pose.visible], pose.xy[pose.visible] * 2 + 0.5)
    clipped = Pose(
        np.array([[-0.6, 5], [0, 0], [175.4, 255.4], [175.6, 3]] + [[1, 1]] * 14), np.ones(18, bool)
    )
    assert clipped.clip_to_frame(256, 176).visible[:4].tolist() == [False, True, True, False]
    x0, y0, x1, y1 = pose.bbox()
    vis = pose.xy[pose.visible]
    assert (x0, y0, x1, y1) == (vis[:, 0].min(), vis[:, 1].min(), vis[:, 0].max(), vis[:, 1].max())


def test_convert_frame_between_community_frames():
    pose = Pose(np.array([[128.0, 40.0], [39.0, 50.0]] + [[100.0, 100.0]] * 16), np.ones(18, bool))
    narrow = convert_frame(pose, "deepfashion-256x256", "deepfashion-256x176")
    assert tuple(narrow.xy[0]) == (88.0, 40.0)
    assert not narrow.visible[1]  # x = 39 is on the padding: outside the 176-wide frame
    kept = convert_frame(pose, "deepfashion-256x256", "deepfashion-256x176", clip=False)
    assert kept.visible[1] and tuple(kept.xy[1]) == (-1.0, 50.0)
    back = convert_frame(narrow, "deepfashion-256x176", "deepfashion-256x256")
    assert back.allclose(pose.replace(visible=narrow.visible))
    # to a smaller model frame: content scaled by 1/4 (pixel-centre convention)
    tiny = convert_frame(pose, "deepfashion-256x256", (64, 44))
    assert np.allclose(tiny.xy[0], [(88 + 0.5) / 4 - 0.5, (40 + 0.5) / 4 - 0.5])
    assert FRAMES["market-128x64"] == KeypointFrame(128, 64, name="market-128x64")
    with pytest.raises(ValueError, match="unknown keypoint frame"):
        convert_frame(pose, "deepfashion-512", (64, 44))


# ----------------------------------------------------------------------------------------- CSV


def test_csv_round_trip_rounds_and_writes_minus_one(tmp_path):
    poses = {"a.jpg": _pose(0), "b.jpg": Pose.missing(), "c.jpg": _pose(2).transform(1, 1, 0.4, 0.3)}
    path = tmp_path / "kp.csv"
    write_keypoint_csv(path, poses)
    lines = path.read_text().splitlines()
    assert lines[0] == "name:keypoints_y:keypoints_x"
    assert lines[2] == "b.jpg: [" + ", ".join(["-1"] * 18) + "]: [" + ", ".join(["-1"] * 18) + "]"
    back = read_keypoint_csv(path)
    assert list(back) == list(poses)
    assert back["a.jpg"] == poses["a.jpg"] and back["b.jpg"].num_visible == 0
    assert back["c.jpg"] == _pose(2)  # rounded to ints
    # y is first in the file
    y0, x0 = json.loads(lines[1].split(":")[1])[0], json.loads(lines[1].split(":")[2])[0]
    assert (x0, y0) == tuple(int(v) for v in poses["a.jpg"].xy[0])
    converted = read_keypoint_csv(path, frame="deepfashion-256x176", to_frame="deepfashion-256x256")
    assert converted["a.jpg"].allclose(poses["a.jpg"].transform(1, 1, 40, 0))


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("a.jpg: [1, 2]: [3]", "keypoints_y must be a list of 18"),
        ("a.jpg: [1, 2, 3]", "expected 3 ':'-separated fields"),
        ("a.jpg: nonsense: [1]", "keypoints_y is not a JSON list"),
        ("a.jpg: " + json.dumps([1] * 18) + ": " + json.dumps(["x"] * 18), "not a finite number"),
        ("a.jpg: " + json.dumps([1] * 18) + ": " + json.dumps([-5] * 18), "negative coordinate"),
        (": " + json.dumps([1] * 18) + ": " + json.dumps([1] * 18), "empty image name"),
    ],
)
def test_csv_malformed_rows_name_file_and_row(tmp_path, row, message):
    path = tmp_path / "bad.csv"
    good = "ok.jpg: " + json.dumps([1] * 18) + ": " + json.dumps([2] * 18)
    path.write_text(f"name:keypoints_y:keypoints_x\n{good}\n{row}\n")
    with pytest.raises(InputError, match=message) as info:
        read_keypoint_csv(path)
    assert str(path) in str(info.value) and "row 3" in str(info.value)


def test_csv_header_duplicates_and_missing_file(tmp_path):
    path = tmp_path / "nohead.csv"
    path.write_text("a.jpg: " + json.dumps([1] * 18) + ": " + json.dumps([1] * 18) + "\n")
    with pytest.raises(InputError, match="row 1: expected header"):
        read_keypoint_csv(path)
    row = "a.jpg: " + json.dumps([1] * 18) + ": " + json.dumps([1] * 18)
    path.write_text(f"name:keypoints_y:keypoints_x\n{row}\n{row}\n")
    with pytest.raises(InputError, match="row 3: duplicate image name"):
        read_keypoint_csv(path)
    with pytest.raises(InputError, match="cannot read keypoint CSV"):
        read_keypoint_csv(tmp_path / "absent.csv")


# ------------------------------------------------------------------------------------ JSON formats


def test_openpose_coco18_round_trip_and_most_confident_person(tmp_path):
    a, b = _pose(5), _pose(6, missing=(0, 1, 2, 3, 4, 5, 6, 7))
    path = tmp_path / "op.json"
    write_openpose_json(path, [b, a])
    data = json.loads(path.read_text())
    assert [len(p["pose_keypoints_2d"]) for p in data["people"]] == [54, 54]
    pose, note = read_pose_file(path)
    assert pose.allclose(a)
    assert "2 person(s)" in note and "kept person 1" in note and "COCO-18" in note
    write_openpose_json(path, a)
    pose, note = read_pose_file(path)
    assert pose.allclose(a) and "kept" not in note


def test_openpose_body25_round_trip(tmp_path):
    pose = _pose(7)
    path = tmp_path / "body25.json"
    write_openpose_json(path, pose, model="BODY_25")
    flat = np.array(json.loads(path.read_text())["people"][0]["pose_keypoints_2d"]).reshape(25, 3)
    np.testing.assert_allclose(flat[8, :2], (pose.xy[8] + pose.xy[11]) / 2)  # mid-hip
    assert (flat[19:] == 0).all()  # foot points missing
    back, note = read_pose_file(path)
    assert back.allclose(pose) and "BODY-25" in note


def test_coco17_round_trip_and_neck_synthesis(tmp_path):
    pose = _pose(8)
    path = tmp_path / "coco.json"
    write_coco_json(path, pose)
    ann = json.loads(path.read_text())["annotations"][0]
    assert len(ann["keypoints"]) == 51
    back, note = read_pose_file(path)
    expected_neck = (pose.xy[2] + pose.xy[5]) / 2
    np.testing.assert_allclose(back.xy[1], expected_neck)
    assert back.replace(visible=np.r_[True, False, back.visible[2:]]).allclose(
        pose.replace(visible=np.r_[True, False, pose.visible[2:]])
    )
    assert "COCO" in note
    # no neck when a shoulder is missing
    one_shoulder = pose.replace(visible=np.r_[pose.visible[:5], False, pose.visible[6:]])
    write_coco_json(path, one_shoulder)
    back, _ = read_pose_file(path)
    assert not back.visible[1] and not back.visible[5]
    # COCO results list (flat keypoints with scores) is read too
    flat = json.loads(path.read_text())["annotations"]
    path.write_text(json.dumps([{"image_id": 1, "keypoints": flat[0]["keypoints"], "score": 0.9}]))
    assert read_pose_file(path)[0] == back


def test_mmpose_round_trip_threshold_and_wrapped_forms(tmp_path):
    pose = _pose(9)
    path = tmp_path / "mm.json"
    write_mmpose_json(path, pose)
    back, note = read_pose_file(path)
    neck = (pose.xy[2] + pose.xy[5]) / 2
    assert np.allclose(back.xy[1], neck) and "mmpose" in note
    assert back.replace(visible=np.r_[True, False, back.visible[2:]]).allclose(
        pose.replace(visible=np.r_[True, False, pose.visible[2:]])
    )
    inst = json.loads(path.read_text())[0]
    inst["keypoint_scores"] = [0.2] * 17  # below mmpose's default 0.3
    path.write_text(json.dumps({"instance_info": [{"frame_id": 0, "instances": [inst]}]}))
    assert read_pose_file(path)[0].num_visible == 0
    assert read_pose_file(path, min_score=0.1)[0].num_visible == 18
    path.write_text(json.dumps({"instances": [inst, {**inst, "keypoint_scores": [0.9] * 17}]}))
    chosen, note = read_pose_file(path)
    assert chosen.num_visible == 18 and "kept person 1" in note


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"people": []}, "holds no people"),
        ([], "holds no people"),
        ({"instance_info": []}, "holds no people"),
        ({"people": [{"pose_keypoints_2d": [1.0] * 30}]}, "30 values; expected 54"),
        ({"people": [{"face_keypoints_2d": []}]}, "no 'pose_keypoints_2d'"),
        ({"annotations": [{"keypoints": [1] * 50}]}, "51 values"),
        ([{"keypoints": [[1, 2]] * 16, "keypoint_scores": [1] * 16}], "got shape \\(16, 2\\)"),
        ([{"keypoints": [[1, 2]] * 17, "keypoint_scores": [1] * 5}], "5 keypoint_scores"),
        ({"something": 1}, "unknown pose format"),
        ({"people": [{"pose_keypoints_2d": ["a"] * 54}]}, "must be numbers"),
    ],
)
def test_pose_file_bad_input_names_the_file(tmp_path, content, message):
    path = tmp_path / "pose.json"
    path.write_text(json.dumps(content))
    with pytest.raises(InputError, match=message) as info:
        read_pose_file(path)
    assert str(path) in str(info.value)


def test_pose_file_not_json(tmp_path):
    path = tmp_path / "pose.json"
    path.write_text("{nope")
    with pytest.raises(InputError, match="not valid JSON"):
        read_pose_file(path)


# ------------------------------------------------------------------------------------- heatmaps


def test_heatmap_peak_sigma_and_missing_channels():
    xy = np.full((18, 2), -1.0, np.float32)
    xy[0] = (10.0, 20.0)
    xy[3] = (30.0, 5.0)
    visible = np.zeros(18, bool)
    visible[[0, 3]] = True
    maps = pose_heatmaps(Pose(xy, visible), 40, 48, sigma=3.0)
    assert maps.shape == (18, 40, 48) and maps.dtype == np.float32
    assert np.unravel_index(maps[0].argmax(), maps[0].shape) == (20, 10)
    assert maps[0, 20, 10] == pytest.approx(1.0)
    # one sigma away the value is exp(-1/2); two sigmas away exp(-2)
    assert maps[0, 20, 13] == pytest.approx(np.exp(-0.5), rel=1e-5)
    assert maps[0, 26, 10] == pytest.approx(np.exp(-2.0), rel=1e-5)
    assert np.count_nonzero(maps[[i for i in range(18) if i not in (0, 3)]]) == 0
    assert pose_sigma(256) == 6.0 and pose_sigma(128) == 3.0 and pose_sigma(64, 6.0) == 1.5


def test_torch_heatmaps_match_numpy_batched():
    poses = [_pose(s, height=32, width=24) for s in range(3)]
    xy = torch.tensor(np.stack([p.xy for p in poses]))
    visible = torch.tensor(np.stack([p.visible for p in poses]))
    xy[0, 9] = float("nan")  # a missing point with garbage coordinates stays all-zero
    maps = pose_heatmaps_torch(xy, visible, 32, 24, 1.5)
    assert maps.shape == (3, 18, 32, 24) and maps.dtype == torch.float32
    for b, p in enumerate(poses):
        np.testing.assert_allclose(maps[b].numpy(), pose_heatmaps(p, 32, 24, 1.5), atol=1e-6)
    assert torch.isfinite(maps).all() and maps[0, 9].abs().sum() == 0
    half = pose_heatmaps_torch(xy.double(), visible, 8, 6, 1.0)
    assert half.dtype == torch.float64


def test_draw_skeleton_returns_a_new_image_with_points_drawn():
    image = np.full((64, 48, 3), 255, np.uint8)
    pose = _pose(11, height=64, width=48)
    out = draw_skeleton(image, pose, radius=2, thickness=1)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert (image == 255).all()  # input untouched
    for i in np.flatnonzero(pose.visible):
        x, y = pose.xy[i].astype(int)
        assert (out[y, x] != 255).any()
    assert (draw_skeleton(image, Pose.missing()) == image).all()
