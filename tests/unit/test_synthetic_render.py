"""SynthPeople renderer: geometry, ground truth, views, depth order, determinism."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from glocal_cli.data.geometry import (
    ATTACHED_PARTS,
    PART_IDS,
    PROFILE_CAPSULE,
    PROFILE_ELLIPSE,
    PROFILE_TRAPEZOID,
    pixel_to_surface,
    surface_to_pixel,
)
from glocal_cli.data.keypoints import KEYPOINT_NAMES
from glocal_cli.data.parsing import CLASS_NAMES
from glocal_cli.synth.appearance import Appearance, sample_appearance
from glocal_cli.synth.poses import PoseBank, complete_pose, find_pose_csv, standing_pose, view_of
from glocal_cli.synth.render import RenderOptions, render_person
from glocal_cli.synth.writer import render_identity

C = {name: i for i, name in enumerate(CLASS_NAMES)}
H, W = 256, 176

# Canonical classes a visible keypoint may fall on.
EXPECTED_CLASSES = {
    "nose": {"face"},
    "r_eye": {"face"},
    "l_eye": {"face"},
    "r_ear": {"face", "hair"},
    "l_ear": {"face", "hair"},
    "neck": {"arms", "upper", "face", "hair"},
    "shoulder": {"upper", "arms"},
    "elbow": {"upper", "arms"},
    "wrist": {"upper", "arms"},
    "hip": {"upper", "lower", "legs"},
    "knee": {"lower", "legs"},
    "ankle": {"lower", "legs", "shoes"},
}


@pytest.fixture(scope="module")
def bank() -> PoseBank:
    """Real poses when the community annotation is present, parametric ones otherwise."""
    return PoseBank(find_pose_csv())


def _appearance(seed: int = 3, **changes) -> Appearance:
    return dataclasses.replace(sample_appearance(np.random.default_rng(seed)), **changes)


@pytest.mark.parametrize("profile", [PROFILE_CAPSULE, PROFILE_TRAPEZOID, PROFILE_ELLIPSE])
def test_surface_projection_inverts_rasterisation(profile):
    frames = np.zeros((18, 8), np.float32)
    frames[3] = [40, 20, 70, 90, 14, 9, profile, 1]
    samples = pixel_to_surface(frames[3], 120, 100)
    inside = samples.sd > 0.5
    yaw = 0.4
    theta = yaw + np.arcsin(samples.s[inside])
    x, y, facing = surface_to_pixel(frames, yaw, np.full(theta.size, 3), samples.u[inside], theta)
    ys, xs = np.nonzero(inside)
    assert facing.all()
    np.testing.assert_allclose(x, xs + samples.x0, atol=1e-3)
    np.testing.assert_allclose(y, ys + samples.y0, atol=1e-3)


def test_keypoints_lie_on_their_parts_and_classes(bank):
    checked = 0
    for identity in range(6):
        _, people = render_identity(11, identity, 4, H, W, bank)
        for person in people:
            for i, name in enumerate(KEYPOINT_NAMES):
                if not person.keypoints.visible[i]:
                    continue
                x, y = (int(round(float(v))) for v in person.keypoints.xy[i])
                assert 0 <= x < W and 0 <= y < H, f"{name} visible outside the frame"
                part = int(person.part[y, x])
                allowed = {PART_IDS[p] for p in ATTACHED_PARTS[name]}
                assert part in allowed, f"{name} lies on part {part}, expected one of {allowed}"
                kind = name.split("_", 1)[-1]
                expected = {C[c] for c in EXPECTED_CLASSES.get(name, EXPECTED_CLASSES.get(kind, set()))}
                assert int(person.parsing[y, x]) in expected, f"{name} on class {person.parsing[y, x]}"
                checked += 1
    assert checked > 200


def test_classes_per_view():
    app = _appearance(hair_style="short", lower_kind="pants", sleeve="short", texture="logo")
    rng = np.random.default_rng(0)
    opts = RenderOptions()
    views = {}
    for label, yaw in (("front", 0.0), ("side", -math.pi / 2), ("back", math.pi)):
        person = render_person(standing_pose(H, W, yaw, torso=0.25, neck_y=0.2), app, H, W, rng, opts)
        assert person.view == label == view_of(yaw)
        views[label] = (set(np.unique(person.parsing).tolist()), person)
    body = {C[c] for c in ("background", "hair", "upper", "lower", "shoes", "arms")}
    assert views["front"][0] == body | {C["face"]}
    assert views["side"][0] == body | {C["face"]}
    assert views["back"][0] == body  # back view: hair only on the head, no face
    back = views["back"][1]
    for name in ("nose", "r_eye", "l_eye"):
        assert not back.keypoints.visible[KEYPOINT_NAMES.index(name)]
    front = views["front"][1]
    assert front.keypoints.visible.all()
    # In the side view the face is a profile: less face than in the front view, and hair behind it.
    assert (views["side"][1].parsing == C["face"]).sum() < (front.parsing == C["face"]).sum()


def test_depth_order_depends_on_view():
    app = _appearance()
    rng = np.random.default_rng(0)
    pos = {}
    for label, yaw in (("right", -math.pi / 2), ("left", math.pi / 2), ("back", math.pi), ("front", 0.0)):
        order = render_person(standing_pose(H, W, yaw), app, H, W, rng).order
        pos[label] = {pid: k for k, pid in enumerate(order)}
    torso, r_arm, l_arm = PART_IDS["torso"], PART_IDS["r_upper_arm"], PART_IDS["l_upper_arm"]
    # Facing image-right the right side is near the camera: right arm over the torso, left behind it.
    assert pos["right"][l_arm] < pos["right"][torso] < pos["right"][r_arm]
    assert pos["left"][r_arm] < pos["left"][torso] < pos["left"][l_arm]
    # Seen from the back, forearms are behind the torso; from the front, in front of it.
    assert pos["back"][PART_IDS["r_lower_arm"]] < pos["back"][torso]
    assert pos["front"][PART_IDS["r_lower_arm"]] > pos["front"][torso]


def test_crossed_arm_occludes_torso_and_hands_behind_back():
    app = _appearance(texture="plain")
    rng = np.random.default_rng(0)
    crossing = standing_pose(H, W, 0.0, offsets={"r_wrist": (0.55, -0.15), "r_elbow": (0.05, 0.0)})
    person = render_person(crossing, app, H, W, rng)
    wrist = np.rint(crossing.xy[KEYPOINT_NAMES.index("r_wrist")]).astype(int)
    assert person.part[wrist[1], wrist[0]] in (PART_IDS["r_lower_arm"], PART_IDS["r_hand"])
    behind = standing_pose(H, W, 0.0, offsets={"r_wrist": (0.3, -0.05)}, behind=(True, False))
    hidden = render_person(behind, app, H, W, rng)
    assert not hidden.keypoints.visible[KEYPOINT_NAMES.index("r_wrist")]


def test_out_of_frame_points_are_missing():
    person = render_person(standing_pose(H, W, 0.0, torso=0.4, neck_y=0.3), _appearance(), H, W, np.random.default_rng(0))
    for name in ("r_ankle", "l_ankle"):
        assert not person.keypoints.visible[KEYPOINT_NAMES.index(name)]
    assert person.keypoints.visible[KEYPOINT_NAMES.index("neck")]


def test_completion_fills_missing_points_from_the_template():
    pose = standing_pose(H, W, 0.0)
    visible = np.ones(18, bool)
    visible[[KEYPOINT_NAMES.index(n) for n in ("r_knee", "r_ankle", "l_knee", "l_ankle", "r_ear")]] = False
    xy, yaw, behind = complete_pose(pose.xy, visible, np.random.default_rng(0))
    assert abs(yaw) < 0.4 and behind == (False, False)
    np.testing.assert_allclose(xy, pose.xy, atol=0.08 * 0.3 * H)
    core = visible.copy()
    core[KEYPOINT_NAMES.index("neck")] = False
    assert complete_pose(pose.xy, core, np.random.default_rng(0)) is None


def test_render_is_deterministic_and_seed_dependent(bank):
    _, a = render_identity(5, 2, 3, 64, 44, bank)
    _, b = render_identity(5, 2, 3, 64, 44, bank)
    _, c = render_identity(6, 2, 3, 64, 44, bank)
    for x, y in zip(a, b):
        assert np.array_equal(x.image, y.image) and np.array_equal(x.part, y.part)
        assert np.array_equal(x.u, y.u) and x.keypoints == y.keypoints
    assert not all(np.array_equal(x.image, z.image) for x, z in zip(a, c))


def test_textures_follow_the_body():
    """A striped torso keeps its stripe count whatever the pose scale (texture in surface units)."""
    app = _appearance(texture="stripes", texture_period=0.12, sleeve="none", neckline="crew")
    rng = np.random.default_rng(0)
    counts = []
    for torso in (0.22, 0.3):
        p = render_person(standing_pose(H, W, 0.0, torso=torso), app, H, W, rng, RenderOptions(shading=False, noise=0))
        column = int(round(p.frames[PART_IDS["torso"], 0]))
        on_torso = p.parsing[:, column] == C["upper"]
        shade = p.image[:, column, :].astype(int).sum(axis=1)[on_torso]
        counts.append(int(np.abs(np.diff(shade > shade.mean())).sum()))
    assert counts[0] == counts[1] > 4
