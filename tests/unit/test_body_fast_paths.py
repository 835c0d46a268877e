"""The fast paths of the rasteriser and the correspondence give the same maps as the plain ones.

``rasterize`` in chunks equals one pass; ``correspond_points`` with and without the CPU compaction
of the bilinear depth test agree; the Anny writer's point-list pair correspondence equals
:func:`~glocal_cli.body.correspond.correspond` on full frames; ``save_correspondence`` rounds and
zeroes as documented.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from glocal_cli.body import correspond as corr_mod
from glocal_cli.body import render as render_mod
from glocal_cli.body.correspond import (
    BACKGROUND,
    VISIBLE,
    correspond,
    correspond_points,
    load_correspondence,
    save_correspondence,
)
from glocal_cli.body.primitives import ellipsoid
from glocal_cli.body.render import RenderedBody, project_weak_perspective, rasterize, render_body


def _turned(verts: torch.Tensor, yaw_deg: float) -> torch.Tensor:
    a = math.radians(yaw_deg)
    rot = torch.tensor([[math.cos(a), 0.0, math.sin(a)], [0.0, 1.0, 0.0], [-math.sin(a), 0.0, math.cos(a)]])
    return verts @ rot.T


def _pose_pair(scale_source: float) -> tuple[RenderedBody, RenderedBody, torch.Tensor]:
    verts, faces = ellipsoid(32, 48, (0.25, 0.5, 0.15))
    verts = verts.float()
    yaws = (0.0, 35.0, -60.0)
    cam_t = torch.tensor([[150.0, 48.0, 64.0]] * 3)
    cam_s = torch.tensor([[scale_source, 40.0, 60.0]] * 3)
    vt = torch.stack([_turned(verts, y) for y in yaws])
    vs = torch.stack([_turned(verts, y + 25.0) for y in yaws])
    t = render_body(*project_weak_perspective(vt, cam_t), faces, 128, 96)
    s = render_body(*project_weak_perspective(vs, cam_s), faces, 128, 96)
    return t, s, faces


def test_rasterize_in_chunks_equals_one_pass(monkeypatch) -> None:
    gen = torch.Generator().manual_seed(3)
    xy = torch.rand(2, 300, 2, generator=gen) * torch.tensor([60.0, 50.0]) - 5
    depth = torch.rand(2, 300, generator=gen) + 1
    faces = torch.randperm(300, generator=gen).view(-1, 3)
    whole = rasterize(xy, depth, faces, 45, 55)
    monkeypatch.setattr(render_mod, "_MAX_CANDIDATES", 64)  # most buckets split into many chunks
    chunked = rasterize(xy, depth, faces, 45, 55)
    assert int(whole.mask.sum()) > 500
    for name in ("face_id", "bary", "depth", "part"):
        assert torch.equal(getattr(whole, name), getattr(chunked, name)), name


@pytest.mark.parametrize("scale_source", [150.0, 45.0])
def test_compacted_bilinear_test_gives_the_same_visibility(monkeypatch, scale_source: float) -> None:
    target, source, faces = _pose_pair(scale_source)
    calls: list[int] = []
    bilinear = corr_mod._bilinear_depth

    def counting(depth, pos, index):
        out = bilinear(depth, pos, index)
        calls.append(int(torch.isfinite(out).sum()))
        return out

    monkeypatch.setattr(corr_mod, "_bilinear_depth", counting)
    b, h, w = target.raster.face_id.shape
    index = torch.arange(b).repeat_interleave(h * w)
    args = (target.raster.face_id.reshape(-1).clamp_min(0), target.raster.bary.reshape(-1, 3), index, index,
            target.xy, source, faces, 0.005)
    pos_c, vis_c = correspond_points(*args, compact=True)
    pos_a, vis_a = correspond_points(*args, compact=False)
    assert calls[0] > 0  # the compacted test had points to decide, with a finite interpolated depth
    assert torch.equal(pos_c, pos_a)
    assert torch.equal(vis_c, vis_a)
    assert int(vis_a.sum()) > 1000


def test_save_correspondence_rounds_once_and_zeroes_the_background(tmp_path) -> None:
    gen = torch.Generator().manual_seed(0)
    flow = (torch.randn(9, 7, 2, generator=gen) * 40).numpy()
    flow[0, 0, 0], flow[1, 1, 1], flow[2, 2, 0] = np.nan, np.inf, -np.inf
    vis = torch.randint(0, 3, (9, 7), generator=gen).numpy().astype(np.uint8)
    vis[:3, :3] = VISIBLE
    save_correspondence(tmp_path / "a.npz", flow, vis)
    save_correspondence(tmp_path / "b.npz", torch.from_numpy(flow), torch.from_numpy(vis))
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    maps = load_correspondence(tmp_path / "a.npz")
    expect = np.nan_to_num(flow, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float16)
    expect[vis == BACKGROUND] = 0
    assert np.array_equal(maps.flow, expect.astype(np.float32))
    assert not np.signbit(maps.flow[vis == BACKGROUND]).any()  # +0.0, whatever the sign of the flow there
    assert np.array_equal(maps.visibility, vis)


def test_anny_pair_correspondence_equals_full_frame_correspond() -> None:
    from glocal_cli.body.anny_body import DEFAULT_ANNY_FILE

    if not DEFAULT_ANNY_FILE.is_file():
        pytest.skip("the Anny body export is not in this checkout")
    from glocal_cli.body.render import Raster
    from glocal_cli.synth.anny_people import (
        anny_pairs,
        identity_correspondence,
        load_anny_body,
        render_anny_identity,
    )
    from glocal_cli.synth.anny_poses import REAL_POSES_FILE, RealPoses

    ident = render_anny_identity(load_anny_body(), 4, 1, 4, 96, 64, RealPoses(REAL_POSES_FILE))
    pairs = anny_pairs(4)
    fast = identity_correspondence(ident, pairs)
    b, r = ident.bodies, ident.bodies.raster
    s = torch.tensor([p[0] for p in pairs])
    t = torch.tensor([p[1] for p in pairs])

    def pick(i: torch.Tensor) -> RenderedBody:
        return RenderedBody(b.xy[i], b.depth[i], Raster(r.face_id[i], r.bary[i], r.depth[i], r.part[i]))

    full = correspond(pick(t), pick(s), ident.faces)
    assert int((full.visibility == VISIBLE).sum()) > 500
    assert torch.equal(fast.visibility, full.visibility)
    assert torch.equal(fast.flow, full.flow)
