"""``pose_frame: auto``: a frame recorded in the pose file wins, community frames are recognised, and
otherwise the pose's box is mapped onto the source person's box, with one warning."""

from __future__ import annotations

import json

import numpy as np
import pytest

from glocal_cli.data.images import fit_to_frame
from glocal_cli.data.keypoints import FRAMES, KeypointFrame, Pose, read_pose_file_frame, write_openpose_json
from glocal_cli.errors import InputError
from glocal_cli.infer.io import GUESS_NOTE, map_target_pose, pose_reference
from tests.infer_helpers import standing_pose


def _pose(arr: np.ndarray) -> Pose:
    return Pose.from_xyv(arr)


def _write(path, people, **extra):
    path.write_text(json.dumps({"people": [{"pose_keypoints_2d": p.reshape(-1).tolist()} for p in people], **extra}))
    return path


def test_recorded_frames_are_read(tmp_path):
    p = standing_pose(256, 176)
    assert read_pose_file_frame(_write(tmp_path / "a.json", [p]))[2] is None
    frame = read_pose_file_frame(_write(tmp_path / "b.json", [p], canvas_width=600, canvas_height=800))[2]
    assert (frame.height, frame.width, frame.pad_x) == (800, 600, 0)
    assert read_pose_file_frame(_write(tmp_path / "c.json", [p], frame="market-128x64"))[2] == FRAMES["market-128x64"]
    assert read_pose_file_frame(_write(tmp_path / "d.json", [p], frame="300x200"))[2].height == 300
    coco = {"images": [{"id": 1, "height": 480, "width": 320}],
            "annotations": [{"keypoints": [10, 10, 2] * 17, "image_id": 1}]}
    (tmp_path / "e.json").write_text(json.dumps(coco))
    assert (read_pose_file_frame(tmp_path / "e.json")[2].height, read_pose_file_frame(tmp_path / "e.json")[2].width) \
        == (480, 320)
    with pytest.raises(InputError, match="f.json.*canvas size"):
        read_pose_file_frame(_write(tmp_path / "f.json", [p], canvas_width=-3, canvas_height=10))
    write_openpose_json(tmp_path / "g.json", _pose(p), canvas=(256, 176))
    pose, _, frame = read_pose_file_frame(tmp_path / "g.json")
    assert frame == FRAMES["deepfashion-256x176"] and pose.allclose(_pose(p), atol=1e-3)


def test_community_frames_are_recognised(tmp_path):
    inside = standing_pose(256, 176)
    inside[:, 0] += 40  # the 176-wide photo in the middle of the padded 256x256 frame
    frame = read_pose_file_frame(_write(tmp_path / "a.json", [inside], canvas_width=256, canvas_height=256))[2]
    assert frame == FRAMES["deepfashion-256x256"]
    square = standing_pose(256, 256)
    square[[4, 7], 0] = (20, 240)  # arms spread into the side columns: a plain square picture
    frame = read_pose_file_frame(_write(tmp_path / "b.json", [square], canvas_width=256, canvas_height=256))[2]
    assert frame.pad_x == 0
    # the padded DeepFashion frame maps into the 256x176 model frame by removing the padding
    mapped, notes = map_target_pose(_pose(inside), "auto", (256, 176), recorded=FRAMES["deepfashion-256x256"],
                                    min_visible=0)
    assert notes == [] and np.allclose(mapped.xy[mapped.visible], _pose(inside).xy[mapped.visible] - [40, 0],
                                       atol=1e-3)
    # Market's 128x64 canvas is fitted whole into 256x176: scale 2, centred (24 px each side)
    market = standing_pose(128, 64)
    mapped, _ = map_target_pose(_pose(market), "auto", (256, 176), recorded=FRAMES["market-128x64"], min_visible=0)
    assert np.allclose(mapped.xy, (_pose(market).xy + 0.5) * 2 - 0.5 + [24, 0], atol=1e-3)


def test_a_canvas_of_the_source_size_is_source_pixels():
    photo = np.zeros((300, 200, 3), np.uint8)
    source = _pose(standing_pose(300, 200) * [0.5, 0.5, 1] + [20, 30, 0])
    _, t = fit_to_frame(photo, 32, 24, pose=source)
    target = _pose(standing_pose(300, 200))
    mapped, notes = map_target_pose(target, "auto", (32, 24), t, recorded=KeypointFrame(300, 200),
                                    source_pose=t.apply_to_pose(source), min_visible=0)
    assert GUESS_NOTE not in notes and mapped.allclose(t.apply_to_pose(target), atol=1e-4)


def test_without_a_frame_the_box_goes_onto_the_source_person_and_it_warns():
    # the defect: a small pose that happens to lie inside the source canvas was read as source pixels
    photo = np.zeros((400, 300, 3), np.uint8)
    source = _pose(standing_pose(200, 150) + [60, 150, 0])  # the person in the lower middle of the photo
    _, t = fit_to_frame(photo, 64, 48, pose=source)
    in_frame = t.apply_to_pose(source)
    target = _pose(standing_pose(64, 48))  # a pose drawn on a 64x48 canvas: inside the 400x300 photo
    mapped, notes = map_target_pose(target, "auto", (64, 48), t, source_pose=in_frame, min_visible=0)
    assert notes == [GUESS_NOTE]
    sb, mb = in_frame.bbox(), mapped.bbox()
    assert abs((sb[0] + sb[2]) / 2 - (mb[0] + mb[2]) / 2) < 0.5 and abs((sb[1] + sb[3]) / 2 - (mb[1] + mb[3]) / 2) < 0.5
    assert abs((mb[3] - mb[1]) - (sb[3] - sb[1])) < 0.5  # same build: the same size as the source person
    old_reading = t.apply_to_pose(target, clip=False)  # what "inside the source canvas = source pixels" gave
    assert np.abs(old_reading.xy - mapped.xy)[mapped.visible].max() > 5


def test_a_sequence_keeps_its_own_motion():
    photo = np.zeros((256, 176, 3), np.uint8)
    source = _pose(standing_pose(256, 176))
    _, t = fit_to_frame(photo, 64, 44, pose=source)
    a = _pose(standing_pose(128, 88))
    b = a.transform(1, 1, 30, 0)  # the dancer moved 30 px to the right
    ref = pose_reference([a, b])
    ma, _ = map_target_pose(a, "auto", (64, 44), t, source_pose=t.apply_to_pose(source), ref=ref, min_visible=0)
    mb, _ = map_target_pose(b, "auto", (64, 44), t, source_pose=t.apply_to_pose(source), ref=ref, min_visible=0)
    shift = mb.xy[mb.visible & ma.visible] - ma.xy[mb.visible & ma.visible]
    assert np.allclose(shift[:, 1], 0, atol=1e-3) and np.allclose(shift[:, 0], shift[0, 0], atol=1e-3)
    assert shift[0, 0] > 5  # the move survives (scaled), it is not re-centred away
