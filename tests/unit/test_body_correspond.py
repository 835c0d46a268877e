"""Flow and visibility between two renderings of one mesh (glocal_cli.body.correspond), checked analytically."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from glocal_cli.body.correspond import (
    BACKGROUND,
    INVISIBLE,
    VISIBLE,
    correspond,
    correspondence_path,
    load_correspondence,
    save_correspondence,
    warp_image,
)
from glocal_cli.body.preview import (
    PAIR_COLUMNS,
    VISIBILITY_COLOURS,
    compose_rows,
    draw_points,
    normal_shading,
    pair_row,
    save_picture,
)
from glocal_cli.body.primitives import ellipsoid
from glocal_cli.body.render import interpolate, project_weak_perspective, render_body, vertex_normals
from glocal_cli.errors import InputError

H, W = 128, 96
AXES = (0.25, 0.5, 0.15)




def rotation(yaw_deg: float, pitch_deg: float = 0.0) -> torch.Tensor:
    """Rotation about the vertical axis (yaw) after one about the horizontal ``x`` axis (pitch)."""
    a, b = math.radians(yaw_deg), math.radians(pitch_deg)
    ry = torch.tensor([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])
    rx = torch.tensor([[1, 0, 0], [0, math.cos(b), -math.sin(b)], [0, math.sin(b), math.cos(b)]])
    return ry @ rx


def render(verts: torch.Tensor, faces: torch.Tensor, cam, parts=None, size=(H, W)):
    xy, depth = project_weak_perspective(verts[None], torch.tensor([cam], dtype=torch.float32))
    return render_body(xy, depth, faces, *size, face_parts=parts)


def pixel_grid() -> torch.Tensor:
    rows, cols = torch.meshgrid(torch.arange(float(H)), torch.arange(float(W)), indexing="ij")
    return torch.stack([cols, rows], -1)


@pytest.fixture(scope="module")
def body() -> tuple[torch.Tensor, torch.Tensor]:
    return ellipsoid(48, 64, AXES)


def test_identity_pair_is_all_visible_with_zero_flow(body) -> None:
    verts, faces = body
    t = render(verts, faces, (150.0, 48.0, 64.0))
    corr = correspond(t, t, faces)
    assert corr.flow.shape == (1, H, W, 2) and corr.flow.dtype == torch.float32
    assert corr.visibility.shape == (1, H, W) and corr.visibility.dtype == torch.uint8
    on = t.raster.mask[0]
    assert on.sum() > 1500
    assert (corr.visibility[0][on] == VISIBLE).all() and (corr.visibility[0][~on] == BACKGROUND).all()
    assert corr.flow.abs().max() < 1e-3


@pytest.mark.parametrize(("scale", "tolerance"), [(150.0, 0.03), (40.0, 0.03), (150.0, 0.0)])
def test_rigid_motion_maps_pixels_to_the_same_surface_point(body, scale: float, tolerance: float) -> None:
    """Flow = the analytic image of each target pixel's surface point; visible = it faces the camera there.

    At 40 px per metre a pixel spans 2.5 cm, so on sloped surfaces depth changes by more than the
    3 cm tolerance within a pixel (the bilinear depth must keep them visible); with no depth
    tolerance at all, the same-or-adjacent-face rule alone must.
    """
    verts, faces = body
    rt, rs = rotation(20, 10), rotation(-35)
    cam_t, cam_s = (scale, 48.0, 64.0), (scale * 0.87, 40.0, 60.0)
    t = render(verts @ rt.T, faces, cam_t)
    s = render(verts @ rs.T, faces, cam_s)
    corr = correspond(t, s, faces, depth_tolerance=tolerance)
    on = t.raster.mask[0]
    # surface point of each target pixel from the target depth map alone, back to the body frame
    grid = pixel_grid()
    cam_xy = (grid - torch.tensor(cam_t[1:])) / cam_t[0]
    point = torch.cat([cam_xy, t.raster.depth[0][..., None]], -1) @ rt  # rt.T applied inversely
    in_source = point @ rs.T
    expected = in_source[..., :2] * cam_s[0] + torch.tensor(cam_s[1:]) - grid
    err = (corr.flow[0] - expected).norm(dim=-1)[on]
    assert err.max() < 0.02, err.max()
    assert (corr.flow[0][~on] == 0).all()
    # facing in the source, from the ellipsoid's analytic normal
    normal = torch.nn.functional.normalize((point / torch.tensor(AXES) ** 2) @ rs.T, dim=-1)
    # away from the source silhouette (a sample within a pixel of it mixes in the background)
    src_inner = -torch.nn.functional.max_pool2d(-s.raster.mask.float()[None], 3, 1, 1)[0, 0] > 0
    at = (grid + expected).round().long()
    at_col, at_row = at[..., 0].clamp(0, W - 1), at[..., 1].clamp(0, H - 1)
    clear = on & (normal[..., 2].abs() > 0.3) & (src_inner[at_row, at_col] | (normal[..., 2] > 0))
    assert clear.sum() > scale and (normal[..., 2][clear] > 0).sum() > scale / 4  # both kinds present
    expected_cls = torch.where(normal[..., 2] < 0, VISIBLE, INVISIBLE)
    assert torch.equal(corr.visibility[0][clear].long(), expected_cls[clear])
    # up to the silhouette itself: almost every facing point whose nearest source pixel shows the body
    rim = on & (normal[..., 2] < -0.3) & s.raster.mask[0][at_row, at_col]
    assert (corr.visibility[0][rim] != VISIBLE).float().mean() <= 0.01


def test_half_turn_marks_the_front_invisible(body) -> None:
    verts, faces = body
    cam = (150.0, 48.0, 64.0)
    t = render(verts, faces, cam)
    s = render(verts @ rotation(180).T, faces, cam)
    corr = correspond(t, s, faces)
    on = t.raster.mask[0]
    normals = interpolate(vertex_normals(verts[None], faces), faces, t.raster)[0]
    facing = on & (normals[..., 2] < -0.2)  # clearly on the front, away from the silhouette
    assert facing.sum() > 1000
    assert (corr.visibility[0][facing] == INVISIBLE).all()
    assert (corr.visibility[0][on] == INVISIBLE).float().mean() > 0.95
    assert (corr.visibility[0][~on] == BACKGROUND).all()


def test_two_poses_occlusion_by_another_part(body) -> None:
    """A ball moves from beside the torso to in front of it: the torso behind it becomes invisible."""
    torso, torso_faces = body
    ball, ball_faces = ellipsoid(24, 32, (0.1, 0.1, 0.1))
    faces = torch.cat([torso_faces, ball_faces + len(torso)])
    parts = torch.cat([torch.full((len(torso_faces),), 2), torch.full((len(ball_faces),), 3)])
    beside, front = torch.tensor([0.37, 0.0, 0.0]), torch.tensor([0.0, 0.05, -0.35])
    cam = (100.0, 48.0, 64.0)
    t = render(torch.cat([torso, ball + beside]), faces, cam, parts)
    s = render(torch.cat([torso, ball + front]), faces, cam, parts)
    corr = correspond(t, s, faces)
    part = t.raster.part[0]
    grid = pixel_grid()
    # the torso does not move; the ball moves by (front - beside) in the image
    assert corr.flow[0][part == 2].abs().max() < 1e-3
    shift = (front - beside)[:2] * cam[0]
    assert (corr.flow[0][part == 3] - shift).abs().max() < 1e-3
    # torso pixels inside the ball's source disc are hidden, those well outside it are seen
    centre = front[:2] * cam[0] + torch.tensor(cam[1:])
    dist = (grid - centre).norm(dim=-1)
    radius = 0.1 * cam[0]
    torso_on = part == 2
    behind = torso_on & (dist < radius - 1.5)
    clear = torso_on & (dist > radius + 1.5)
    assert behind.sum() > 200 and clear.sum() > 1000
    assert (corr.visibility[0][behind] == INVISIBLE).all()
    assert (corr.visibility[0][clear] == VISIBLE).all()
    assert (corr.visibility[0][part == 3] == VISIBLE).float().mean() > 0.98


def test_points_outside_the_source_frame_are_invisible(body) -> None:
    verts, faces = body
    t = render(verts, faces, (150.0, 48.0, 64.0))
    s = render(verts, faces, (150.0, 48.0 + 60.0, 64.0))  # moved right, partly out of the frame
    corr = correspond(t, s, faces)
    on = t.raster.mask[0]
    assert (corr.flow[0][on] - torch.tensor([60.0, 0.0])).abs().max() < 1e-3
    col = pixel_grid()[..., 0]
    assert (corr.visibility[0][on & (col + 60 > W - 0.5)] == INVISIBLE).all()
    inside = on & (col + 60 < W - 1)
    assert inside.sum() > 200 and (corr.visibility[0][inside] == VISIBLE).all()


def test_batch_matches_single_pairs(body) -> None:
    verts, faces = body
    vs = torch.stack([verts @ rotation(a).T for a in (0, 40, 180)])
    cams = torch.tensor([[150.0, 48.0, 64.0]] * 3)
    xy, depth = project_weak_perspective(vs, cams)
    t = render_body(xy[[0, 0, 0]], depth[[0, 0, 0]], faces, H, W)
    s = render_body(xy, depth, faces, H, W)
    batched = correspond(t, s, faces)
    for i in range(3):
        one = correspond(render(verts, faces, (150.0, 48.0, 64.0)), render(vs[i], faces, (150.0, 48.0, 64.0)), faces)
        assert torch.equal(batched.visibility[i], one.visibility[0])
        assert torch.allclose(batched.flow[i], one.flow[0], atol=1e-4)


def test_warp_image_samples_the_source_at_the_flow(body) -> None:
    """A linear ramp warps exactly (bilinear sampling): warped(col, row) = ramp((col, row) + flow)."""
    verts, faces = body
    t = render(verts @ rotation(15).T, faces, (150.0, 48.0, 64.0))
    s = render(verts @ rotation(-20).T, faces, (140.0, 46.0, 62.0))
    corr = correspond(t, s, faces)
    grid = pixel_grid()
    ramp = torch.stack([0.01 * grid[..., 0], 0.02 * grid[..., 1], 0.005 * (grid[..., 0] + grid[..., 1])])[None]
    warped = warp_image(ramp, corr.flow)
    pos = grid + corr.flow[0]
    expect = torch.stack([0.01 * pos[..., 0], 0.02 * pos[..., 1], 0.005 * (pos[..., 0] + pos[..., 1])])
    vis = corr.visible[0]
    assert vis.sum() > 1000
    assert (warped[0][:, vis] - expect[:, vis]).abs().max() < 1e-4
    with pytest.raises(ValueError):
        warp_image(ramp[..., :-1], corr.flow)


def test_save_load_round_trip_is_deterministic(body, tmp_path) -> None:
    verts, faces = body
    t = render(verts @ rotation(30).T, faces, (150.0, 48.0, 64.0))
    s = render(verts @ rotation(-30).T, faces, (150.0, 40.0, 64.0))
    corr = correspond(t, s, faces)
    maps = corr.maps(0)
    assert maps.flow.dtype == np.float16 and maps.visibility.dtype == np.uint8
    path = correspondence_path(tmp_path, "img/a.jpg", "b.png")
    assert path == tmp_path / "correspondence" / "a__b.npz"
    save_correspondence(path, maps.flow, maps.visibility)
    first = path.read_bytes()
    save_correspondence(path, corr.flow[0], corr.visibility[0])  # tensors work too, same bytes
    assert path.read_bytes() == first
    loaded = load_correspondence(path)
    assert loaded.flow.dtype == np.float32 and loaded.flow.shape == (H, W, 2)
    np.testing.assert_array_equal(loaded.visibility, corr.visibility[0].numpy())
    np.testing.assert_allclose(loaded.flow, corr.flow[0].numpy(), atol=0.07, rtol=0)
    assert {0, 1, 2} <= set(np.unique(loaded.visibility).tolist())


def test_load_rejects_bad_files(tmp_path) -> None:
    bad_version = tmp_path / "v.npz"
    np.savez(bad_version, flow=np.zeros((2, 3, 2), np.float16), visibility=np.zeros((2, 3), np.uint8),
             format_version=np.array(99))
    with pytest.raises(InputError, match="format_version 99"):
        load_correspondence(bad_version)
    garbage = tmp_path / "g.npz"
    garbage.write_bytes(b"not a zip")
    with pytest.raises(InputError, match="g.npz"):
        load_correspondence(garbage)
    shapes = tmp_path / "s.npz"
    np.savez(shapes, flow=np.zeros((2, 3, 2), np.float16), visibility=np.zeros((3, 3), np.uint8),
             format_version=np.array(1))
    with pytest.raises(InputError, match="inconsistent"):
        load_correspondence(shapes)
    with pytest.raises(ValueError):
        save_correspondence(tmp_path / "x.npz", np.zeros((2, 3, 2)), np.full((2, 3), 5, np.uint8))


def test_preview_row_shows_the_maps(body, tmp_path) -> None:
    verts, faces = body
    parts = torch.full((len(faces),), 2)
    t = render(verts, faces, (150.0, 48.0, 64.0), parts)
    s = render(verts @ rotation(60).T, faces, (150.0, 48.0, 64.0), parts)
    corr = correspond(t, s, faces)
    photo = np.full((H, W, 3), 200, np.uint8)
    warped = warp_image(torch.rand(1, 3, H, W), corr.flow)[0].permute(1, 2, 0).mul(255).byte().numpy()
    shading = normal_shading(interpolate(vertex_normals(verts[None], faces), faces, t.raster)[0])
    row = pair_row(source=photo, target=photo, source_part=s.raster.part[0], target_part=t.raster.part[0],
                   flow=corr.flow[0], visibility=corr.visibility[0], warped=warped, target_shading=shading)
    pad = 2
    assert row.dtype == np.uint8 and row.shape == (H, 6 * W + 5 * pad, 3)
    vis_cell = row[:, 4 * (W + pad):4 * (W + pad) + W]
    cls = corr.visibility[0].numpy()
    for k in (BACKGROUND, VISIBLE, INVISIBLE):
        assert (vis_cell[cls == k] == VISIBILITY_COLOURS[k]).all()
    target_cell = row[:, W + pad:2 * W + pad]
    on = t.raster.mask[0].numpy()
    assert (target_cell[~on] == 200).all() and (target_cell[on] != 200).any(-1).all()
    grid = compose_rows([row, row], titles=PAIR_COLUMNS, cell_width=W)
    assert grid.shape == (14 + 2 * H + 2 * pad, row.shape[1], 3)
    out = save_picture(grid, tmp_path / "p" / "preview.png")
    assert out.stat().st_size > 0
    dots = draw_points(photo, np.array([[10.0, 20.0], [50.0, 60.0], [-40.0, 5.0]]), (0, 255, 0),
                       visible=np.array([1, 0, 1]), radius=1)
    assert (dots[19:22, 9:12] == (0, 255, 0)).all() and (dots[60, 50] == 200).all()
    assert (dots != photo).any(-1).sum() == 9 and (photo == 200).all()  # one 3x3 dot, input untouched


def test_mirror_vertices_reflect_through_each_parts_mid_depth(body) -> None:
    from glocal_cli.body.correspond import mirror_vertices

    verts, faces = body
    parts = torch.zeros(faces.shape[0], dtype=torch.long)  # one part: the whole ellipsoid
    mirror = mirror_vertices(verts, faces, parts)
    assert mirror.shape == (verts.shape[0],)
    reflected = verts[mirror]
    # the same x and y, the opposite depth (the UV ellipsoid is symmetric in z: exact up to the grid)
    assert torch.allclose(reflected[:, :2], verts[:, :2], atol=1e-5)
    assert torch.allclose(reflected[:, 2], -verts[:, 2], atol=1e-5)
    assert torch.equal(mirror[mirror], torch.arange(verts.shape[0]))  # an involution
    # two parts side by side: each vertex stays in its own part
    two = (verts[faces].mean(1)[:, 0] > 0).long()
    m2 = mirror_vertices(verts, faces, two)
    vpart = torch.zeros(verts.shape[0], dtype=torch.long)
    vpart[faces.flip(0).reshape(-1)] = two.flip(0).repeat_interleave(3)
    assert torch.equal(vpart[m2], vpart)


def test_mirror_correspondence_of_a_half_turn_is_a_horizontal_flip(body) -> None:
    """Seen from behind, every target point's other side is the source's front: the mirrored flow sends target
    column ``c`` to ``2 * cx - c`` (the ellipsoid turned about its vertical axis) and marks it visible."""
    from glocal_cli.body.correspond import mirror_correspond, mirror_vertices

    verts, faces = body
    cam = (150.0, 48.0, 64.0)
    t = render(verts @ rotation(180).T, faces, cam)
    s = render(verts, faces, cam)
    mirror = mirror_vertices(verts, faces, torch.zeros(faces.shape[0], dtype=torch.long))
    flow, visible = mirror_correspond(t, s, faces, mirror)
    on = t.raster.mask[0]
    normals = interpolate(vertex_normals((verts @ rotation(180).T)[None], faces), faces, t.raster)[0]
    inner = on & (normals[..., 2] < -0.3)
    assert inner.sum() > 1000 and bool(visible[0][inner].all())
    assert not bool(visible[0][~on].any()) and float(flow[0][~on].abs().max()) == 0.0
    grid = pixel_grid()
    col = grid[..., 0]  # pixel (col, row) is the point (col, row) of the projection; the axis is at x = 48
    mapped = col + flow[0][..., 0]
    assert torch.allclose(mapped[inner], 2 * 48.0 - col[inner], atol=0.6)
    assert float(flow[0][..., 1][inner].abs().max()) < 0.6
    # the ordinary correspondence of the same pair sees none of it
    assert (correspond(t, s, faces).visibility[0][inner] == INVISIBLE).all()
