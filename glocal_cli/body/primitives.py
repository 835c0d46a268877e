"""Simple closed meshes for tests and benchmarks of the rasteriser and the correspondence."""

from __future__ import annotations

import math

import torch


def ellipsoid(nlat: int, nlon: int, axes: tuple[float, float, float] = (1.0, 1.0, 1.0),
              dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """A closed UV ellipsoid with semi-axes ``axes``: ``(nlat - 1) * nlon + 2`` vertices and
    ``2 * nlon * (nlat - 1)`` faces, wound so that the normals point outwards. ``(vertices, faces)``."""
    theta = torch.linspace(0, math.pi, nlat + 1, dtype=dtype)[1:-1]
    phi = torch.arange(nlon, dtype=dtype) * (2 * math.pi / nlon)
    t, p = torch.meshgrid(theta, phi, indexing="ij")
    ring = torch.stack([t.sin() * p.cos(), -t.cos(), t.sin() * p.sin()], -1).reshape(-1, 3)
    verts = torch.cat([ring, torch.tensor([[0.0, -1.0, 0.0], [0.0, 1.0, 0.0]], dtype=dtype)])
    top, bottom = len(verts) - 2, len(verts) - 1
    idx = torch.arange(len(ring)).view(nlat - 1, nlon)
    a, b, c, d = idx[:-1], idx[:-1].roll(-1, 1), idx[1:], idx[1:].roll(-1, 1)
    faces = torch.cat([
        torch.stack([a, c, b], -1).reshape(-1, 3),
        torch.stack([b, c, d], -1).reshape(-1, 3),
        torch.stack([torch.full_like(idx[0], top), idx[0], idx[0].roll(-1)], -1),
        torch.stack([torch.full_like(idx[-1], bottom), idx[-1].roll(-1), idx[-1]], -1),
    ])
    return verts * torch.tensor(axes, dtype=dtype), faces
