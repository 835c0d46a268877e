"""The pure-PyTorch rasteriser (glocal_cli.body.render) against a brute-force reference and analytic cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from glocal_cli.body import primitives
from glocal_cli.body.render import (
    interpolate,
    project_perspective,
    project_weak_perspective,
    rasterize,
    render_body,
    vertex_normals,
)


def ellipsoid(nlat: int, nlon: int, axes=(1.0, 1.0, 1.0)) -> tuple[torch.Tensor, torch.Tensor]:
    """The shared UV ellipsoid in float64 (exact references)."""
    return primitives.ellipsoid(nlat, nlon, axes, dtype=torch.float64)


def brute_force(xy: np.ndarray, depth: np.ndarray, faces: np.ndarray, h: int, w: int):
    """Per pixel, per face, in float64: nearest covering face (ties: lower id), its barycentrics and depth.

    Also returns a mask of *ambiguous* pixels, where rounding may legitimately decide: the pixel
    centre within 1e-4 (barycentric) of a covering candidate's edge, or two candidates within 1e-4
    in depth.
    """
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float64)
    best_z = np.full((h, w), np.inf)
    best_f = np.full((h, w), -1)
    best_b = np.zeros((h, w, 3))
    zs = []
    ambiguous = np.zeros((h, w), bool)
    for fi, (i0, i1, i2) in enumerate(faces):
        (ax, ay), (bx, by), (cx, cy) = xy[i0], xy[i1], xy[i2]
        area = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
        if area == 0:
            continue
        w0 = ((bx - cols) * (cy - rows) - (by - rows) * (cx - cols)) / area
        w1 = ((cx - cols) * (ay - rows) - (cy - rows) * (ax - cols)) / area
        w2 = 1.0 - w0 - w1
        wmin = np.minimum(np.minimum(w0, w1), w2)
        inside = wmin >= 0
        ambiguous |= np.abs(wmin) < 1e-4
        z = w0 * depth[i0] + w1 * depth[i1] + w2 * depth[i2]
        zs.append(np.where(inside, z, np.inf))
        better = inside & (z < best_z)
        best_z = np.where(better, z, best_z)
        best_f = np.where(better, fi, best_f)
        best_b = np.where(better[..., None], np.stack([w0, w1, w2], -1), best_b)
    if len(zs) > 1:
        stack = np.sort(np.stack(zs), axis=0)
        with np.errstate(invalid="ignore"):  # inf - inf where fewer than two faces cover a pixel
            ambiguous |= np.isfinite(stack[1]) & (stack[1] - stack[0] < 1e-4)
    return best_f, best_b, best_z, ambiguous


def random_mesh(gen: torch.Generator, h: int, w: int, big: int = 12, small: int = 40):
    """Big overlapping triangles (some reaching outside the frame) plus small ones of 0.3-4 px."""
    big_xy = torch.rand(big * 3, 2, generator=gen, dtype=torch.float64) * torch.tensor([w + 16.0, h + 16.0]) - 8
    centre = torch.rand(small, 1, 2, generator=gen, dtype=torch.float64) * torch.tensor([w, h])
    size = 0.3 + 3.7 * torch.rand(small, 1, 1, generator=gen, dtype=torch.float64)
    small_xy = (centre + size * (torch.rand(small, 3, 2, generator=gen, dtype=torch.float64) - 0.5)).reshape(-1, 2)
    xy = torch.cat([big_xy, small_xy])
    depth = torch.rand(len(xy), generator=gen, dtype=torch.float64) * 4 + 1
    faces = torch.arange(len(xy)).view(-1, 3)
    return xy, depth, faces


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rasteriser_matches_brute_force(seed: int) -> None:
    h, w = 23, 31
    gen = torch.Generator().manual_seed(seed)
    meshes = [random_mesh(gen, h, w) for _ in range(2)]
    faces = meshes[0][2]
    xy = torch.stack([m[0] for m in meshes]).float()  # (2, V, 2): one topology, two placements
    depth = torch.stack([m[1] for m in meshes]).float()
    parts = torch.randint(1, 15, (len(faces),), generator=gen)
    raster = rasterize(xy, depth, faces, h, w, face_parts=parts)
    assert raster.face_id.shape == (2, h, w) and raster.face_id.dtype == torch.long
    assert raster.bary.shape == (2, h, w, 3) and raster.depth.shape == (2, h, w)
    for b in range(2):
        ref_f, ref_b, ref_z, ambiguous = brute_force(xy[b].double().numpy(), depth[b].double().numpy(),
                                                     faces.numpy(), h, w)
        fid = raster.face_id[b].numpy()
        sure = ~ambiguous
        assert sure.mean() > 0.7 and (ref_f[sure] >= 0).sum() > 100  # the check has teeth
        np.testing.assert_array_equal(fid[sure], ref_f[sure])
        hit = sure & (ref_f >= 0)
        np.testing.assert_allclose(raster.bary[b].double().numpy()[hit], ref_b[hit], atol=1e-5, rtol=0)
        np.testing.assert_allclose(raster.depth[b].double().numpy()[hit], ref_z[hit], atol=1e-5, rtol=1e-6)
        assert np.isinf(raster.depth[b].numpy()[fid < 0]).all()
        expect_part = np.where(fid >= 0, parts.numpy()[np.maximum(fid, 0)], 0)
        np.testing.assert_array_equal(raster.part[b].numpy(), expect_part)


def test_pixel_centre_convention_and_inclusive_edges() -> None:
    # right triangle (0,0) (4,0) (0,4): covers the centres (col j, row i) with i + j <= 4, i, j >= 0
    xy = torch.tensor([[[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]]])
    raster = rasterize(xy, torch.ones(1, 3), torch.tensor([[0, 1, 2]]), 6, 6)
    rows, cols = np.mgrid[0:6, 0:6]
    np.testing.assert_array_equal(raster.mask[0].numpy(), (rows + cols <= 4))
    np.testing.assert_allclose(raster.bary[0, 0, 0].numpy(), [1, 0, 0], atol=1e-7)
    np.testing.assert_allclose(raster.bary[0, 1, 3].numpy(), [0, 0.75, 0.25], atol=1e-7)  # x=3, y=1
    assert raster.part[0].max() == 1 and raster.depth[0, 0, 0] == 1.0


def test_equal_depth_ties_go_to_the_lower_face_id() -> None:
    xy = torch.tensor([[[0.0, 0.0], [9.0, 0.0], [0.0, 9.0], [20.0, 0.0], [21.0, 0.0], [20.0, 1.0]]])
    faces = torch.tensor([[3, 4, 5], [0, 1, 2], [0, 1, 2], [0, 1, 2]])  # one triangle three times
    raster = rasterize(xy, torch.full((1, 6), 2.0), faces, 8, 8)
    assert raster.mask.sum() == 64 - 15 and set(raster.face_id[raster.mask].tolist()) == {1}


def test_skips_offscreen_degenerate_and_nonfinite_faces() -> None:
    xy = torch.tensor([[
        [-30.0, -30.0], [-20.0, -30.0], [-30.0, -20.0],  # off screen
        [2.0, 2.0], [5.0, 5.0], [8.0, 8.0],  # zero area
        [1.0, 1.0], [float("nan"), 1.0], [1.0, 6.0],  # not finite
    ]])
    raster = rasterize(xy, torch.ones(1, 9), torch.arange(9).view(3, 3), 10, 10)
    assert not raster.mask.any() and torch.isinf(raster.depth).all() and (raster.part == 0).all()
    empty = rasterize(xy, torch.ones(1, 9), torch.zeros(0, 3, dtype=torch.long), 4, 5)
    assert empty.face_id.shape == (1, 4, 5) and not empty.mask.any()


def test_interpolating_vertex_positions_gives_pixel_centres() -> None:
    """Barycentrics are right everywhere: blending the vertex xy returns each covered pixel's centre."""
    verts, faces = ellipsoid(40, 60, (0.3, 0.8, 0.2))
    xy, depth = project_weak_perspective(verts[None].float(), torch.tensor([[100.0, 40.0, 60.0]]))
    raster = rasterize(xy, depth, faces, 120, 80)
    assert raster.mask.sum() > 2000
    pos = interpolate(xy, faces, raster)
    rows, cols = torch.meshgrid(torch.arange(120.0), torch.arange(80.0), indexing="ij")
    grid = torch.stack([cols, rows], -1)
    assert (pos[0][raster.mask[0]] - grid[raster.mask[0]]).abs().max() < 1e-3
    assert (pos[0][~raster.mask[0]] == 0).all()
    # the front (smaller z) is what is seen: depth on the centre line is -0.2 (the front pole)
    assert raster.depth[0, 60, 40].item() == pytest.approx(-0.2, abs=2e-3)
    # gradients flow to the attributes
    attr = torch.rand(1, len(verts), 4, requires_grad=True)
    interpolate(attr, faces, raster).sum().backward()
    assert attr.grad is not None and attr.grad.abs().sum() > 0


def test_perspective_correct_depth_and_barycentrics() -> None:
    """A tilted quad in perspective: depth is the ray-plane intersection, barycentrics the 3D point's."""
    quad = torch.tensor([[-1.0, -1.0, 3.0], [1.0, -1.0, 5.0], [1.0, 1.0, 5.0], [-1.0, 1.0, 3.0]])
    faces = torch.tensor([[0, 1, 2], [0, 2, 3]])
    cam = torch.tensor([[40.0, 20.0, 16.0]])  # focal, cx, cy
    xy, depth = project_perspective(quad[None], cam)
    raster = rasterize(xy, depth, faces, 32, 40, perspective_correct=True)
    assert raster.mask.sum() > 100
    rows, cols = torch.meshgrid(torch.arange(32.0), torch.arange(40.0), indexing="ij")
    rx, ry = (cols - 20) / 40, (rows - 16) / 40  # ray (rx, ry, 1); plane z = 4 + x
    z_true = 4 / (1 - rx)
    m = raster.mask[0]
    torch.testing.assert_close(raster.depth[0][m], z_true[m], atol=1e-4, rtol=1e-5)
    point = interpolate(quad, faces, raster)[0]  # 3D points of the pixels
    torch.testing.assert_close(point[..., 0][m], (rx * z_true)[m], atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(point[..., 1][m], (ry * z_true)[m], atol=1e-4, rtol=1e-5)
    # without the correction the depth is an image-space blend (wrong inside the quad)
    plain = rasterize(xy, depth, faces, 32, 40)
    assert (plain.depth[0][m] - z_true[m]).abs().max() > 1e-2


def test_projection_helpers_and_normals() -> None:
    v = torch.tensor([[[0.1, -0.2, 0.5], [0.0, 0.0, 2.0]]])
    xy, depth = project_weak_perspective(v, torch.tensor([[100.0, 10.0, 20.0]]))
    torch.testing.assert_close(xy, torch.tensor([[[20.0, 0.0], [10.0, 20.0]]]))
    torch.testing.assert_close(depth, torch.tensor([[0.5, 2.0]]))
    xy, depth = project_perspective(v, torch.tensor([[50.0, 10.0, 20.0]]))
    torch.testing.assert_close(xy, torch.tensor([[[20.0, 0.0], [10.0, 20.0]]]))
    verts, faces = ellipsoid(12, 16)
    normals = vertex_normals(verts[None], faces)[0]
    assert ((normals * verts).sum(-1) > 0.95).all()  # unit sphere: the normal is the position


def test_render_body_keeps_vertices_and_batches_independently() -> None:
    verts, faces = ellipsoid(16, 24, (0.3, 0.6, 0.2))
    cams = torch.tensor([[60.0, 20.0, 30.0], [40.0, 30.0, 25.0]])
    xy, depth = project_weak_perspective(verts[None].float().expand(2, -1, -1), cams)
    body = render_body(xy, depth, faces, 50, 40)
    assert body.xy is xy and body.depth is depth
    for b in range(2):
        single = rasterize(xy[b:b + 1], depth[b:b + 1], faces, 50, 40)
        assert torch.equal(single.face_id[0], body.raster.face_id[b])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu() -> None:
    verts, faces = ellipsoid(60, 80, (0.3, 0.8, 0.2))
    xy, depth = project_weak_perspective(verts[None].float(), torch.tensor([[120.0, 88.0, 128.0]]))
    cpu = rasterize(xy, depth, faces, 256, 176)
    gpu = rasterize(xy.cuda(), depth.cuda(), faces.cuda(), 256, 176)
    assert torch.equal(cpu.face_id, gpu.face_id.cpu())
    torch.testing.assert_close(cpu.bary, gpu.bary.cpu(), atol=1e-5, rtol=0)
