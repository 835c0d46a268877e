"""Exact flow and visibility from SynthPeople surface maps (glocal_cli.data.correspondence)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from glocal_cli.data.correspondence import (
    SurfaceMap,
    flow_to_grid,
    load_surface,
    pair_correspondence,
    warp_by_flow,
)
from glocal_cli.data.geometry import PART_IDS, surface_to_pixel
from glocal_cli.data.parsing import CLASS_NAMES
from glocal_cli.errors import InputError
from glocal_cli.synth.appearance import sample_appearance
from glocal_cli.synth.poses import PoseBank, find_pose_csv, standing_pose
from glocal_cli.synth.render import RenderedPerson, RenderOptions, render_person
from glocal_cli.synth.writer import render_identity

H, W = 256, 176
FACE = CLASS_NAMES.index("face")
CLEAN = RenderOptions(shading=False, noise=0)


def surface(p: RenderedPerson) -> SurfaceMap:
    return SurfaceMap(p.part, p.u, p.v, p.frames, p.yaw)


@pytest.fixture(scope="module")
def bank() -> PoseBank:
    return PoseBank(find_pose_csv())


@pytest.fixture(scope="module")
def pairs(bank):
    """(target, source) renders of 8 identities, noise-free and unshaded."""
    out = []
    for identity in range(8):
        _, people = render_identity(21, identity, 2, H, W, bank, CLEAN)
        out.append((people[0], people[1]))
    return out


def test_warping_the_source_reproduces_the_target(pairs):
    """Mean abs error over every visible pixel below 8 grey levels (0..255), noise-free, unshaded.

    The residual comes only from resampling anti-aliased edges (silhouettes, stripes): over
    pixels away from any part edge in both images it is below 3 grey levels.
    """
    total, count, total_in, count_in = 0.0, 0, 0.0, 0
    for target, source in pairs:
        corr = pair_correspondence(surface(target), surface(source))
        warped = warp_by_flow(source.image, corr.flow)
        err = np.abs(warped - target.image.astype(np.float32)).mean(axis=-1)
        vis = corr.visible > 0
        total += float(err[vis].sum())
        count += int(vis.sum())
        interior = vis & _interior(target.part)
        coords = np.rint(corr.coords).astype(int)
        cx, cy = np.clip(coords[..., 0], 0, W - 1), np.clip(coords[..., 1], 0, H - 1)
        interior &= _interior(source.part)[cy, cx]
        total_in += float(err[interior].sum())
        count_in += int(interior.sum())
    assert count > 20000
    assert total / count < 8.0
    assert total_in / count_in < 3.0


def _interior(part: np.ndarray) -> np.ndarray:
    """Pixels whose 5x5 neighbourhood is one part."""
    from scipy.ndimage import maximum_filter, minimum_filter

    return (maximum_filter(part, 5) == part) & (minimum_filter(part, 5) == part)


def test_flow_is_geometrically_exact(pairs):
    """Source pixel hit by the flow, projected back into the target, lands on the start pixel."""
    errors = []
    for target, source in pairs:
        tgt, src = surface(target), surface(source)
        corr = pair_correspondence(tgt, src)
        rows, cols = np.nonzero(corr.visible > 0)
        xy = np.rint(corr.coords[rows, cols]).astype(int)
        sx, sy = xy[:, 0], xy[:, 1]
        part = src.part[sy, sx].astype(np.int64)
        assert np.array_equal(part, tgt.part[rows, cols])
        theta = src.v[sy, sx] * 2 * math.pi
        bx, by, facing = surface_to_pixel(tgt.frames, tgt.yaw, part, src.u[sy, sx], theta)
        assert facing.mean() > 0.99
        errors.append(np.hypot(bx - cols, by - rows)[facing])
    err = np.concatenate(errors)
    assert np.median(err) < 0.6
    assert np.percentile(err, 95) < 2.0


def test_same_image_is_fully_visible_with_zero_flow():
    app = sample_appearance(np.random.default_rng(1))
    p = render_person(standing_pose(H, W, 0.3), app, H, W, np.random.default_rng(0))
    corr = pair_correspondence(surface(p), surface(p))
    person = p.part > 0
    assert np.array_equal(corr.visible > 0, person)
    assert np.abs(corr.flow).max() < 1e-3
    np.testing.assert_array_equal(corr.coords[~person], np.stack(np.meshgrid(np.arange(W), np.arange(H)), -1)[~person])


def test_back_view_source_hides_the_face():
    app = dataclasses.replace(sample_appearance(np.random.default_rng(2)), hair_style="short")
    rng = np.random.default_rng(0)
    front = render_person(standing_pose(H, W, 0.25), app, H, W, rng)
    back = render_person(standing_pose(H, W, math.pi), app, H, W, rng)
    corr = pair_correspondence(surface(front), surface(back))
    face = front.parsing == FACE
    assert face.sum() > 300
    assert corr.visible[face].max() == 0  # the face is not seen from behind
    # Only a band on one side (surface points within 90 degrees of both views) is shared.
    assert 0 < corr.visible.sum() < 0.2 * (front.part > 0).sum()


def test_visibility_is_zero_exactly_where_an_arm_hides_the_torso():
    """Independent check: both figures are the template at two scales (a known similarity), so a
    torso point of the target is visible exactly where the source shows torso at the mapped pixel."""
    app = dataclasses.replace(sample_appearance(np.random.default_rng(4)), texture="plain")
    rng = np.random.default_rng(0)
    target_pose = standing_pose(H, W, 0.0, torso=0.26, neck_y=0.2)
    source_pose = standing_pose(
        H, W, 0.0, torso=0.22, neck_y=0.26, offsets={"r_wrist": (0.6, -0.2), "r_elbow": (0.02, 0.0)}
    )
    target = render_person(target_pose, app, H, W, rng)
    source = render_person(source_pose, app, H, W, rng)
    corr = pair_correspondence(surface(target), surface(source))
    rows, cols = np.nonzero(target.part == PART_IDS["torso"])
    scale = 0.22 / 0.26
    neck_t, neck_s = target_pose.xy[1], source_pose.xy[1]
    mx = neck_s[0] + (cols - neck_t[0]) * scale
    my = neck_s[1] + (rows - neck_t[1]) * scale
    np.testing.assert_allclose(corr.coords[rows, cols, 0], mx, atol=0.05)
    np.testing.assert_allclose(corr.coords[rows, cols, 1], my, atol=0.05)
    expected = source.part[np.rint(my).astype(int), np.rint(mx).astype(int)] == PART_IDS["torso"]
    assert np.array_equal(corr.visible[rows, cols] > 0, expected)
    covering = source.part[np.rint(my[~expected]).astype(int), np.rint(mx[~expected]).astype(int)]
    arm = [PART_IDS[n] for n in ("r_lower_arm", "r_hand")]
    assert np.isin(covering, arm).sum() > 200  # the crossing forearm really hides part of the torso


def test_surface_file_round_trip_and_determinism(tmp_path, bank):
    _, people = render_identity(3, 0, 2, 64, 44, bank)
    a, b = surface(people[0]), surface(people[1])
    a.save(tmp_path / "a.npz")
    a.save(tmp_path / "a2.npz")
    b.save(tmp_path / "b.npz")
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "a2.npz").read_bytes()
    loaded = load_surface(tmp_path / "a.npz")
    assert np.array_equal(loaded.part, a.part) and loaded.yaw == a.yaw
    person = a.part > 0
    assert np.abs(loaded.u - a.u)[person].max() < 1.5e-3
    dv = np.abs((loaded.v - a.v + 0.5) % 1.0 - 0.5)[person]
    assert dv.max() < 1.5e-3
    from_files = pair_correspondence(tmp_path / "a.npz", tmp_path / "b.npz")
    from_maps = pair_correspondence(a.quantised(), b.quantised())
    assert np.array_equal(from_files.flow, from_maps.flow)
    assert np.array_equal(from_files.visible, from_maps.visible)
    flow, visible = from_files  # a plain (flow, visibility) tuple too
    assert flow.shape == (64, 44, 2) and visible.shape == (64, 44) and visible.dtype == np.float32


def test_flow_to_grid_matches_grid_sample(bank):
    torch = pytest.importorskip("torch")
    _, people = render_identity(8, 1, 2, 64, 44, bank, CLEAN)
    corr = pair_correspondence(surface(people[0]), surface(people[1]))
    grid = torch.from_numpy(flow_to_grid(corr.flow))[None]
    src = torch.from_numpy(people[1].image.astype(np.float32)).permute(2, 0, 1)[None]
    sampled = torch.nn.functional.grid_sample(src, grid, align_corners=False, padding_mode="border")
    expected = warp_by_flow(people[1].image, corr.flow)
    np.testing.assert_allclose(sampled[0].permute(1, 2, 0).numpy(), expected, atol=0.05)


def test_unreadable_surface_file_is_an_input_error(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(InputError, match="bad.npz"):
        load_surface(bad)
