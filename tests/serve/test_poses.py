"""Pose helpers of the web page: wire format, interpolation, alignment, default pose."""

from __future__ import annotations

import numpy as np
import pytest

from glocal_cli.data.keypoints import KEYPOINT_NAMES, Pose
from glocal_cli.errors import InputError
from glocal_cli.serve.poses import (
    align_pose,
    default_pose,
    interpolate_poses,
    interpolation_sequence,
    pose_from_wire,
    pose_to_wire,
)
from tests.infer_helpers import standing_pose


def test_wire_round_trip_and_missing_points():
    arr = standing_pose(256, 176)
    arr[4] = 0  # a missing point travels as [0, 0, 0]
    pose = pose_from_wire(arr.tolist())
    assert pose.num_visible == 17 and not pose.visible[4]
    wire = pose_to_wire(pose)
    assert wire[4] == [0.0, 0.0, 0.0] and len(wire) == 18
    assert pose_from_wire(wire).allclose(pose, atol=0.01)
    assert pose_from_wire(np.asarray(wire).reshape(-1).tolist()).allclose(pose, atol=0.01)


@pytest.mark.parametrize("bad", [[[1, 2, 1]] * 17, [[1, 2]] * 18, "pose", [[float("nan"), 1, 1]] * 18,
                                 [[1e9, 1, 1]] * 18])
def test_malformed_wire_poses_are_input_errors(bad):
    with pytest.raises(InputError):
        pose_from_wire(bad)


def test_interpolation_ends_middle_and_one_sided_points():
    a = Pose.from_xyv(standing_pose(256, 176))
    b = a.transform(1.0, 1.0, 20.0, -10.0)
    b = b.replace(visible=np.where(np.arange(18) == 3, False, b.visible))  # r_elbow only in a
    assert interpolate_poses(a, b, 0.0).allclose(a)
    assert interpolate_poses(a, b, 1.0).allclose(b)
    mid = interpolate_poses(a, b, 0.5)
    both = a.visible & b.visible
    np.testing.assert_allclose(mid.xy[both], (a.xy[both] + b.xy[both]) / 2, atol=1e-4)
    assert interpolate_poses(a, b, 0.49).visible[3] and not mid.visible[3]


def test_interpolation_sequence_passes_through_every_key_pose():
    a = Pose.from_xyv(standing_pose(256, 176))
    b, c = a.transform(1, 1, 30, 0), a.transform(1, 1, 30, 40)
    seq = interpolation_sequence([a, b, c], 9)
    assert len(seq) == 9
    assert seq[0].allclose(a) and seq[4].allclose(b) and seq[8].allclose(c)
    with pytest.raises(InputError):
        interpolation_sequence([], 4)


def test_align_pose_matches_the_reference_box():
    ref = Pose.from_xyv(standing_pose(200, 100)).transform(1, 1, 30, 20)
    other = Pose.from_xyv(standing_pose(600, 300))  # three times larger, elsewhere
    aligned = align_pose(other, ref, 256, 176)
    rb, ab = ref.bbox(), aligned.bbox()
    assert ab[3] - ab[1] == pytest.approx(rb[3] - rb[1], abs=1e-3)  # same height
    assert ab[3] == pytest.approx(rb[3], abs=1e-3)  # same feet line
    assert (ab[0] + ab[2]) / 2 == pytest.approx((rb[0] + rb[2]) / 2, abs=1e-3)  # same centre
    fitted = align_pose(other, None, 256, 176)
    assert fitted.in_frame(256, 176)[fitted.visible].all()


def test_default_pose_stands_inside_the_image_facing_the_camera():
    pose = default_pose(256, 176)
    assert pose.num_visible == 18 and pose.in_frame(256, 176).all()
    r, left = KEYPOINT_NAMES.index("r_shoulder"), KEYPOINT_NAMES.index("l_shoulder")
    assert pose.xy[r, 0] < pose.xy[left, 0]  # the person's right is on the image's left
    x0, y0, x1, y1 = pose.bbox()
    assert y1 - y0 > 0.7 * 256 and x1 - x0 < 176
