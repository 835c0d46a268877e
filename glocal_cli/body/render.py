"""A batched triangle rasteriser in pure PyTorch (CPU and CUDA, nothing to compile).

It turns a posed, projected body mesh into per-pixel maps: which face is seen (``face_id``), where
on that face (``bary``, barycentric weights of its three vertices), how far (``depth``) and which
body part (``part``, :data:`~glocal_cli.body.base.BODY_PARTS`). The correspondence
(:mod:`glocal_cli.body.correspond`) and the pictures (:mod:`glocal_cli.body.preview`) are built
on these maps; :func:`interpolate` carries any per-vertex attribute (surface coordinates, source
positions, normals) to the pixels.

**Pixel convention** (the one of :mod:`glocal_cli.data.correspondence`): a position is ``(x, y) =
(col, row)`` in pixels and pixel ``(row i, col j)`` has its *centre* at ``(x, y) = (j, i)``; the
image spans ``[-0.5, W - 0.5) x [-0.5, H - 0.5)``. A pixel is covered by a triangle when its
centre lies inside it or on its edge; when two faces cover a pixel at the same depth, the lower face
id wins, so the output is deterministic.

**Depth**: smaller is closer. With :func:`project_weak_perspective` depth is the canonical ``z``
(metres, away from the camera) and is interpolated linearly in the image; with
:func:`project_perspective` pass ``perspective_correct=True`` so that depth and barycentrics are
those of the 3D surface point (faces with a vertex at ``depth <= near`` are not drawn; there is no
clipping). Faces are drawn from both sides (no back-face culling): the depth test alone decides.

**How** (no per-pixel Python loop): every face's pixel bounding box is computed at once; faces are
grouped by box area into power-of-two buckets, and each bucket enumerates its ``2**k`` candidate
pixels per face as one tensor, keeps those inside the triangle, and a ``scatter_reduce(amin)`` on
the flat ``(batch, row, col)`` index keeps the nearest. The cost grows with the covered area, not
with ``faces x pixels``; the host waits for the device once per call (the bucket sizes) and once
per bucket chunk (its inside count).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = [
    "Raster",
    "RenderedBody",
    "interpolate",
    "project_perspective",
    "project_weak_perspective",
    "rasterize",
    "render_body",
    "vertex_normals",
]

_MAX_CANDIDATES = 1 << 21
"""Candidate pixels evaluated in one tensor (bounds the peak working memory to ~100 MB)."""


@dataclass
class Raster:
    """Per-pixel maps of a rendered mesh batch (see the module docstring for the conventions)."""

    face_id: torch.Tensor
    """``long (B, H, W)``: index of the visible face, ``-1`` on the background."""
    bary: torch.Tensor
    """``(B, H, W, 3)``: barycentric weights of the face's vertices at the pixel centre (0 on the
    background; perspective-correct when asked for)."""
    depth: torch.Tensor
    """``(B, H, W)``: depth of the visible surface point, ``inf`` on the background."""
    part: torch.Tensor
    """``long (B, H, W)``: body part of the visible face (0 = background)."""

    @property
    def mask(self) -> torch.Tensor:
        """``bool (B, H, W)``: pixels that show the mesh."""
        return self.face_id >= 0

    @property
    def size(self) -> tuple[int, int]:
        """``(H, W)``."""
        return int(self.face_id.shape[1]), int(self.face_id.shape[2])


@dataclass
class RenderedBody:
    """A projected mesh and its raster: what :func:`glocal_cli.body.correspond.correspond` takes."""

    xy: torch.Tensor
    """``(B, V, 2)`` vertex positions in pixels ``(col, row)``."""
    depth: torch.Tensor
    """``(B, V)`` vertex depths (smaller = closer)."""
    raster: Raster
    """The rendered maps."""


def project_weak_perspective(vertices: torch.Tensor, camera: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Scaled orthographic projection of canonical-frame vertices.

    ``vertices`` ``(B, V, 3)`` in the canonical body frame (metres; ``x`` right, ``y`` down, ``z``
    away from the camera); ``camera`` ``(B, 3)`` = ``[scale (px per metre), tx, ty]`` (pixels).
    Returns ``xy (B, V, 2) = scale * (x, y) + (tx, ty)`` and ``depth (B, V) = z`` (metres).
    Differentiable.
    """
    scale = camera[:, 0, None, None]
    xy = vertices[..., :2] * scale + camera[:, None, 1:3]
    return xy, vertices[..., 2]


def project_perspective(vertices: torch.Tensor, camera: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Pinhole projection of camera-frame vertices (``z > 0`` in front of the camera).

    ``vertices`` ``(B, V, 3)`` (metres, the canonical axes, already placed in front of the camera);
    ``camera`` ``(B, 3)`` = ``[focal (px), cx, cy]`` (principal point in pixels). Returns ``xy (B, V,
    2) = focal * (x, y) / z + (cx, cy)`` and ``depth (B, V) = z``; rasterise with
    ``perspective_correct=True``. Differentiable (for ``z`` away from 0).
    """
    z = vertices[..., 2]
    xy = vertices[..., :2] / z[..., None] * camera[:, 0, None, None] + camera[:, None, 1:3]
    return xy, z


def vertex_normals(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Area-weighted unit vertex normals ``(B, V, 3)`` of ``vertices (B, V, 3)``, ``faces (F, 3)``.

    The sign follows the faces' winding (right-hand rule); isolated vertices get a zero normal.
    """
    tri = vertices[:, faces]  # (B, F, 3, 3)
    face_n = torch.linalg.cross(tri[:, :, 1] - tri[:, :, 0], tri[:, :, 2] - tri[:, :, 0], dim=-1)
    normals = torch.zeros_like(vertices)
    idx = faces.reshape(-1)[None, :, None].expand(vertices.shape[0], -1, 3)
    normals.scatter_add_(1, idx, face_n.repeat_interleave(3, dim=1))
    return torch.nn.functional.normalize(normals, dim=-1, eps=1e-12)


@torch.no_grad()
def rasterize(
    xy: torch.Tensor,
    depth: torch.Tensor,
    faces: torch.Tensor,
    height: int,
    width: int,
    face_parts: torch.Tensor | None = None,
    perspective_correct: bool = False,
    near: float = 1e-6,
) -> Raster:
    """Z-buffer rasterisation of a batch of meshes that share one topology.

    ``xy`` ``(B, V, 2)`` vertex positions in pixels (``(col, row)``, pixel centres at integers);
    ``depth`` ``(B, V)``; ``faces`` ``long (F, 3)``; ``face_parts`` ``long (F,)`` part of each face
    (default: 1 for every face). Faces with a non-finite vertex or a zero image area are skipped.
    Not differentiable (use :func:`interpolate` on the result for gradients w.r.t. attributes).
    Returns a :class:`Raster` of size ``height x width`` on ``xy``'s device.
    """
    if xy.ndim != 3 or xy.shape[-1] != 2:
        raise ValueError(f"xy must be (B, V, 2), got {tuple(xy.shape)}")
    if depth.shape != xy.shape[:2]:
        raise ValueError(f"depth must be {tuple(xy.shape[:2])}, got {tuple(depth.shape)}")
    if faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError(f"faces must be (F, 3), got {tuple(faces.shape)}")
    device = xy.device
    dtype = xy.dtype if xy.dtype in (torch.float32, torch.float64) else torch.float32
    batch, num_verts, num_faces = xy.shape[0], xy.shape[1], faces.shape[0]
    faces = faces.to(device=device, dtype=torch.long)
    pixels = height * width
    total = batch * pixels
    xy = xy.to(dtype)
    depth = depth.to(dtype)

    # per-face corner coordinates as contiguous (B*F, 3) columns: one index_select each on flat
    # vertex ids (much cheaper than advanced indexing, and what the loop below slices)
    vidx = (faces.reshape(1, -1) + torch.arange(batch, device=device)[:, None] * num_verts).reshape(-1)
    tx = xy[..., 0].reshape(-1).index_select(0, vidx).view(-1, 3)
    ty = xy[..., 1].reshape(-1).index_select(0, vidx).view(-1, 3)
    tri_z = depth.reshape(-1).index_select(0, vidx).view(-1, 3)
    good_v = torch.isfinite(xy).all(-1) & torch.isfinite(depth)  # (B, V): tested per vertex, not per corner
    if perspective_correct:
        good_v &= depth > near
    finite = good_v.reshape(-1).index_select(0, vidx).view(-1, 3).all(-1)
    tx = torch.where(finite[:, None], tx, 0.0)
    ty = torch.where(finite[:, None], ty, 0.0)
    x0 = torch.ceil(tx.amin(-1)).clamp(0, width)
    x1 = torch.floor(tx.amax(-1)).clamp(-1, width - 1)
    y0 = torch.ceil(ty.amin(-1)).clamp(0, height)
    y1 = torch.floor(ty.amax(-1)).clamp(-1, height - 1)
    box_w = (x1 - x0 + 1).clamp_min(0)
    box_area = (box_w * (y1 - y0 + 1).clamp_min(0)).long()
    area2 = (tx[:, 1] - tx[:, 0]) * (ty[:, 2] - ty[:, 0]) - (ty[:, 1] - ty[:, 0]) * (tx[:, 2] - tx[:, 0])
    ok = finite & (box_area > 0) & (area2 != 0)
    # bucket k holds the faces whose box has (2**(k-1), 2**k] pixels
    bucket = torch.ceil(torch.log2(box_area.clamp_min(1).to(torch.float64))).long()
    bucket = torch.where(ok, bucket, -1)
    counts = torch.bincount(bucket + 1, minlength=1).tolist()  # the one sync on the bucket sizes
    # the drawn faces in bucket order; every per-face value is gathered once into that order, so a
    # bucket's values are contiguous slices of these tables
    order = torch.argsort(bucket, stable=True)[counts[0]:]
    # vertices relative to each face's box corner: small numbers, accurate edge functions
    corners = torch.cat([tx - x0[:, None], ty - y0[:, None]], 1).index_select(0, order)  # (n, 6)
    inv_area_s = (1.0 / area2).index_select(0, order)
    box_w_s = box_w.index_select(0, order)
    box_h_s = (y1 - y0 + 1).clamp_min(0).index_select(0, order)
    tri_z_s = tri_z.index_select(0, order)
    # flat (batch, row, col) index of each face's box corner
    b_of = torch.div(order, num_faces, rounding_mode="floor")
    base_s = b_of * pixels + y0.index_select(0, order).long() * width + x0.index_select(0, order).long()
    fid_s = order - b_of * num_faces

    keys, zs, fids, barys = [], [], [], []
    start = 0
    for k, count in enumerate(counts[1:]):
        tile = 1 << k
        step = max(1, _MAX_CANDIDATES // tile)
        for lo in range(start, start + count, step):
            hi = min(lo + step, start + count)
            offs = torch.arange(tile, device=device, dtype=dtype)
            bw = box_w_s[lo:hi, None]
            # candidate c of a box of width w is pixel (c mod w, c div w) of the box; floats are
            # exact here (integers far below 2**24)
            cy = torch.floor(offs / bw)  # (n, tile)
            cx = offs - cy * bw
            c = corners[lo:hi]
            ax, bx, qx, ay, by, qy = (c[:, i, None] for i in range(6))
            # the three edge functions, each difference computed once (same values as evaluating
            # every product from scratch)
            dax, dbx, dqx = ax - cx, bx - cx, qx - cx
            day, dby, dqy = ay - cy, by - cy, qy - cy
            inv_area = inv_area_s[lo:hi, None]
            w0 = (dbx * dqy).sub_(dby * dqx).mul_(inv_area)
            w1 = (dqx * day).sub_(dqy * dax).mul_(inv_area)
            w2 = (dax * dby).sub_(day * dbx).mul_(inv_area)
            # inside: all three weights >= 0 (minimum propagates NaN, which is outside as before)
            inside = torch.minimum(torch.minimum(w0, w1), w2) >= 0
            inside &= cy < box_h_s[lo:hi, None]
            idx = inside.view(-1).nonzero()[:, 0]
            face_i = torch.div(idx, tile, rounding_mode="floor")
            w = torch.stack([w0.view(-1).index_select(0, idx), w1.view(-1).index_select(0, idx),
                             w2.view(-1).index_select(0, idx)], dim=-1)
            fz = tri_z_s[lo:hi].index_select(0, face_i)
            if perspective_correct:
                w = w / fz
                inv_z = w.sum(-1, keepdim=True)
                w = w / inv_z
                z = 1.0 / inv_z[:, 0]
            else:
                z = (w * fz).sum(-1)
            px = cy.view(-1).index_select(0, idx).long() * width + cx.view(-1).index_select(0, idx).long()
            keys.append(base_s[lo:hi].index_select(0, face_i) + px)
            zs.append(z)
            fids.append(fid_s[lo:hi].index_select(0, face_i))
            barys.append(w)
        start += count

    face_id = torch.full((total,), -1, dtype=torch.long, device=device)
    bary = torch.zeros(total, 3, dtype=dtype, device=device)
    zbuf = torch.full((total,), math.inf, dtype=dtype, device=device)
    if keys:
        key = torch.cat(keys)
        z = torch.cat(zs)
        fid = torch.cat(fids)
        zbuf.scatter_reduce_(0, key, z, "amin")
        nearest = z <= zbuf.index_select(0, key)
        fbuf = torch.full((total,), num_faces, dtype=torch.long, device=device)
        fbuf.scatter_reduce_(0, key, torch.where(nearest, fid, num_faces), "amin")
        winner = nearest & (fid == fbuf.index_select(0, key))  # one per covered pixel
        face_id = torch.where(fbuf < num_faces, fbuf, -1)
        win = winner.nonzero()[:, 0]
        bary.index_copy_(0, key.index_select(0, win), torch.cat(barys).index_select(0, win))
    if face_parts is None:
        part = (face_id >= 0).long()
    else:
        parts = face_parts.to(device=device, dtype=torch.long)
        part = torch.where(face_id >= 0, parts.index_select(0, face_id.clamp_min(0)), 0)
    face_id = face_id.view(batch, height, width)
    part = part.view(batch, height, width)
    return Raster(face_id, bary.view(batch, height, width, 3), zbuf.view(batch, height, width), part)


def render_body(
    xy: torch.Tensor,
    depth: torch.Tensor,
    faces: torch.Tensor,
    height: int,
    width: int,
    face_parts: torch.Tensor | None = None,
    perspective_correct: bool = False,
) -> RenderedBody:
    """:func:`rasterize` and keep the projected vertices with the maps (a :class:`RenderedBody`)."""
    raster = rasterize(xy, depth, faces, height, width, face_parts, perspective_correct)
    return RenderedBody(xy, depth, raster)


def interpolate(attributes: torch.Tensor, faces: torch.Tensor, raster: Raster) -> torch.Tensor:
    """Per-vertex ``attributes`` ``(B, V, C)`` or ``(V, C)`` at every pixel: ``(B, H, W, C)``, 0 on the background.

    The barycentric blend of the visible face's three vertices; differentiable w.r.t. ``attributes``.
    """
    face_id, bary = raster.face_id, raster.bary
    batch, height, width = face_id.shape
    if attributes.ndim == 2:
        attributes = attributes.unsqueeze(0).expand(batch, -1, -1)
    channels = attributes.shape[-1]
    vid = faces.to(face_id.device)[face_id.clamp_min(0)]  # (B, H, W, 3)
    index = vid.reshape(batch, -1, 1).expand(-1, -1, channels)
    corner = torch.gather(attributes, 1, index).view(batch, height, width, 3, channels)
    out = (bary.to(corner.dtype).unsqueeze(-1) * corner).sum(-2)
    return torch.where(raster.mask.unsqueeze(-1), out, out.new_zeros(()))
