"""``pose_frame: auto`` without a recorded frame: the target pose goes onto the source person by body
scale (torso and limb lengths), anchored at the neck, and is kept inside the frame; a sequence gets one
placement for all its frames; degenerate poses fall back without errors."""

from __future__ import annotations

import numpy as np

from glocal_cli.data.keypoints import Pose
from glocal_cli.infer.io import (
    GUESS_MARGIN,
    GUESS_NOTE,
    body_scale,
    guess_target_pose,
    map_target_pose,
    pose_reference,
)
from tests.infer_helpers import standing_pose

HW = (256, 176)
NECK, R_HIP, L_HIP = 1, 8, 11
LEGS = [9, 10, 12, 13]


def _torso_len(pose: Pose) -> float:
    return float(np.linalg.norm((pose.xy[R_HIP] + pose.xy[L_HIP]) / 2 - pose.xy[NECK]))


def _closeup(scale: float, neck_xy: tuple[float, float]) -> Pose:
    """A standing person ``scale`` times the 256x176 frame's own, neck at ``neck_xy``, legs cut off by the
    frame (as a detector reports a close-up photo: only the keypoints inside it)."""
    p = Pose.from_xyv(standing_pose(*HW))
    p = p.transform(scale, scale, neck_xy[0] - scale * p.xy[NECK, 0], neck_xy[1] - scale * p.xy[NECK, 1])
    return p.clip_to_frame(*HW)


def _full_body_target() -> Pose:
    """A full-body pose drawn on a 900x600 canvas (no frame recorded), off centre."""
    return Pose.from_xyv(standing_pose(700, 450)).transform(1, 1, 120, 150)


def _inside(pose: Pose, margin_px: float) -> bool:
    xy = pose.xy[pose.visible]
    return bool((xy[:, 0] >= margin_px - 1e-3).all() and (xy[:, 0] <= HW[1] - 1 - margin_px + 1e-3).all()
                and (xy[:, 1] >= margin_px - 1e-3).all() and (xy[:, 1] <= HW[0] - 1 - margin_px + 1e-3).all())


def test_closeup_source_keeps_the_torso_scale_and_the_full_body_stays_in_the_frame():
    # a waist-up photo: torso 0.35 * 256 = 90 px, hips near the bottom, no legs
    source = _closeup(1.0, (88.0, 150.0))
    assert not source.visible[LEGS].any() and source.visible[[R_HIP, L_HIP]].all()
    target = _full_body_target()
    mapped, notes = map_target_pose(target, "auto", HW, source_pose=source, min_visible=0)
    assert notes == [GUESS_NOTE]  # nothing falls outside, so no other warning
    assert mapped.num_visible == 18 and _inside(mapped, GUESS_MARGIN * min(HW))
    # the torso is the source's torso: the full body (0.82 * 256 = 210 px tall) fits, so no shrink
    assert abs(_torso_len(mapped) - _torso_len(source)) < 0.5
    # moved up (its feet would hang 59 px below the frame at the source's neck), not sideways
    assert abs(mapped.xy[NECK, 0] - source.xy[NECK, 0]) < 0.5 and mapped.xy[NECK, 1] < source.xy[NECK, 1] - 40
    # the former box rule centres the full body on the waist-up box: the feet leave the frame
    old, old_notes = map_target_pose(target, "auto", HW, source_pose=source, min_visible=0, guess="box")
    assert old.num_visible <= 16 and any("outside the frame" in n for n in old_notes)


def test_a_closer_closeup_shrinks_around_the_neck_only_as_much_as_needed():
    source = _closeup(2.5, (80.0, 40.0))  # a chest-up photo: neck, shoulders, arms, no hips
    assert not source.visible[[R_HIP, L_HIP] + LEGS].any()
    target = _full_body_target()
    mapped, _ = map_target_pose(target, "auto", HW, source_pose=source, min_visible=0)
    m = GUESS_MARGIN * min(HW)
    assert mapped.num_visible == 18 and _inside(mapped, m)
    box = mapped.bbox()
    assert abs((box[3] - box[1]) - (HW[0] - 1 - 2 * m)) < 0.5  # as tall as the frame allows: the least shrink
    assert abs(mapped.xy[NECK, 0] - source.xy[NECK, 0]) < 0.5  # still on the person's neck line


def test_the_scale_comes_from_the_shared_segments_not_one_foreshortened_limb():
    source = Pose.from_xyv(standing_pose(*HW))
    target_arr = standing_pose(*HW) * [0.5, 0.5, 1]
    target_arr[4, :2] = target_arr[3, :2] + [0.5, 0.5]  # right forearm pointing at the camera: ~0 long
    target_arr[7, :2] = target_arr[6, :2] + [1.0, 2.0]  # left forearm nearly so
    ref = pose_reference([Pose.from_xyv(target_arr)])
    assert abs(body_scale(ref, source) - 2.0) < 0.02
    # a longer-legged target: the weighted median follows the body, not the box height
    tall = standing_pose(*HW)
    tall[[9, 12], 1] += 20
    tall[[10, 13], 1] += 45
    assert abs(body_scale(pose_reference([Pose.from_xyv(tall)]), source) - 1.0) < 0.02


def test_a_sequence_gets_one_placement_for_every_frame_and_stays_in_the_frame():
    source = _closeup(1.6, (90.0, 70.0))
    base = _full_body_target()
    frames = [base.transform(1, 1, dx, dy) for dx, dy in ((0, 0), (60, 0), (120, 10), (180, -10))]
    arr = frames[2].to_xyv()
    arr[NECK] = 0  # a frame that misses its neck is still placed like the others
    frames[2] = Pose.from_xyv(arr)
    ref = pose_reference(frames)
    mapped = [map_target_pose(f, "auto", HW, source_pose=source, ref=ref, min_visible=0)[0] for f in frames]
    # one affine map for all: scale from frame 0, then every frame must follow the same x' = s x + t
    a, b = frames[0].xy[[0, 10]].astype(np.float64), mapped[0].xy[[0, 10]].astype(np.float64)
    s = (b[1, 1] - b[0, 1]) / (a[1, 1] - a[0, 1])
    t = b[0] - s * a[0]
    for f, m in zip(frames, mapped, strict=True):
        assert m.num_visible == f.num_visible  # the whole dance (its union box) fits, nothing clipped
        assert np.allclose(m.xy[m.visible], s * f.xy[f.visible] + t, atol=1e-2)
    assert mapped[3].xy[0, 0] - mapped[0].xy[0, 0] > 0.9 * 180 * s  # the move survives, scaled
    # placed one by one, the frames would each be moved back onto the person: the motion would be lost
    alone = [guess_target_pose(f, source, HW) for f in (frames[0], frames[3])]
    assert abs((alone[1].xy[0, 0] - alone[0].xy[0, 0]) - (mapped[3].xy[0, 0] - mapped[0].xy[0, 0])) > 20


def test_degenerate_poses_fall_back_sensibly():
    source = Pose.from_xyv(standing_pose(*HW))
    # a target with one keypoint (the neck) lands on the source's neck
    one = np.zeros((18, 3), np.float32)
    one[NECK] = (500, 40, 1)
    mapped, notes = map_target_pose(Pose.from_xyv(one), "auto", HW, source_pose=source, min_visible=0)
    assert GUESS_NOTE in notes and mapped.num_visible == 1
    assert np.allclose(mapped.xy[NECK], source.xy[NECK], atol=1e-3)
    # no shared segment and no shared anchor (source shows only the nose): the target box is centred on
    # the nose, fitted into the frame, every point inside
    nose = np.zeros((18, 3), np.float32)
    nose[0] = (60, 30, 1)
    target = _full_body_target()
    mapped, notes = map_target_pose(target, "auto", HW, source_pose=Pose.from_xyv(nose), min_visible=0)
    assert mapped.num_visible == 18 and _inside(mapped, GUESS_MARGIN * min(HW))
    assert np.isfinite(mapped.xy).all() and mapped.bbox()[3] - mapped.bbox()[1] > 0.8 * HW[0]
    # no shared segment but both tall enough: the box heights set the scale (legs only vs. arms only)
    legs = standing_pose(*HW)
    legs[:8, 2] = 0
    legs[14:, 2] = 0
    arms = standing_pose(128, 88)
    arms[8:14, 2] = 0
    assert body_scale(pose_reference([Pose.from_xyv(arms)]), Pose.from_xyv(legs)) is None
    mapped, _ = map_target_pose(Pose.from_xyv(arms), "auto", HW, source_pose=Pose.from_xyv(legs), min_visible=0)
    box, lbox = mapped.bbox(), Pose.from_xyv(legs).bbox()
    assert abs((box[3] - box[1]) - (lbox[3] - lbox[1])) < 0.5 and mapped.num_visible == 12
    # a source with no keypoint: the former fallback, the pose's own box fitted into the frame
    mapped, notes = map_target_pose(target, "auto", HW, source_pose=Pose.missing(), min_visible=0)
    assert GUESS_NOTE in notes and mapped.num_visible == 18
    # a target with no keypoint: nothing to place, no error
    mapped, _ = map_target_pose(Pose.missing(), "auto", HW, source_pose=source, min_visible=0)
    assert mapped.num_visible == 0
