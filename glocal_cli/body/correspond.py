"""Dense correspondence between two renderings of one body mesh: flow target -> source and visibility.

Given the same mesh posed and projected twice (the *target* and the *source* body, each a
:class:`~glocal_cli.body.render.RenderedBody`), every target pixel that shows the body sees one
surface point: a face and barycentric weights. The same weights on the same face of the source
body give that point's position and depth in the source image. :func:`correspond` returns, batched:

* ``flow`` ``float32 (B, H, W, 2)``: pixel offsets with ``source_xy = (col, row) + flow``, the
  convention of :mod:`glocal_cli.data.correspondence` (pixel centres at integer coordinates); zero
  on the background. On an invisible pixel the flow still points at the projection of the surface
  point (it carries no appearance there);
* ``visibility`` ``uint8 (B, H, W)``, Intr-Flow's three classes: :data:`BACKGROUND` (0, the target
  pixel shows no body), :data:`VISIBLE` (1, the point is seen in the source) and :data:`INVISIBLE`
  (2, hidden there: turned away, covered by another part, or outside the source frame).

**Visibility test.** The point is visible when its face turns the same side to the camera in both
images (the sign of its projected area: a face seen from the front in the target and from behind in
the source faces away there; no winding convention needed), its source position lies inside the
source frame and the source pixel nearest to it shows the body, with either (a) the same face or a face sharing a
vertex with it, or (b) a surface within ``depth_tolerance`` of the point's source depth, at the
nearest pixel centre or interpolated bilinearly at the exact position (robust where triangles are
smaller than a pixel and on steep slopes, where depth changes by more than the tolerance within a
pixel). A point whose nearest source pixel is background (within half a
pixel of the source silhouette) is invisible: a sample there mixes in the background. An occluder
in front of the point (an arm over the torso, the
front of the body after a half turn) is a different, non-adjacent face at a depth well outside the
tolerance, so the point is marked invisible. The tolerance is in depth units: metres for the
canonical frame (default 3 cm, about a quarter of an upper arm's thickness).

With a perspective projection the source position is the barycentric blend of the projected source
vertices, not the projection of the blended 3D point: the two differ by far less than a pixel for
body meshes (triangles of a few pixels).

**Dataset file** (``format_version`` 1): ``correspondence/<target_stem>__<source_stem>.npz`` in a
prepared dataset holds ``flow`` ``float16 (H, W, 2)`` (pixel offsets; 1/16 px steps below 128 px,
1/8 px up to 256 px) and ``visibility`` ``uint8 (H, W)`` (the three classes), written
deterministically (fixed zip timestamps: equal maps give byte-identical files).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from glocal_cli.body.render import RenderedBody
from glocal_cli.data.correspondence import (
    BACKGROUND,
    CORRESPONDENCE_FORMAT_VERSION,
    INVISIBLE,
    VISIBLE,
    CorrespondenceMaps,
    correspondence_path,
    load_correspondence,
    save_correspondence,
)
from glocal_cli.data.layout import CORRESPONDENCE_DIR
from glocal_cli.models.flow import warp

__all__ = [
    "BACKGROUND",
    "CORRESPONDENCE_DIR",
    "CORRESPONDENCE_FORMAT_VERSION",
    "INVISIBLE",
    "VISIBLE",
    "BodyCorrespondence",
    "CorrespondenceMaps",
    "correspond",
    "correspond_points",
    "mirror_correspond",
    "mirror_vertices",
    "correspondence_path",
    "flow_to_normalised",
    "load_correspondence",
    "save_correspondence",
    "warp_image",
]


@dataclass
class BodyCorrespondence:
    """What :func:`correspond` returns (batched tensors on the bodies' device)."""

    flow: torch.Tensor
    """``float32 (B, H, W, 2)``: pixel offsets target -> source, 0 on the background."""
    visibility: torch.Tensor
    """``uint8 (B, H, W)``: :data:`BACKGROUND`, :data:`VISIBLE` or :data:`INVISIBLE`."""

    @property
    def visible(self) -> torch.Tensor:
        """``bool (B, H, W)``: target pixels whose surface point is seen in the source."""
        return self.visibility == VISIBLE

    def maps(self, index: int = 0) -> CorrespondenceMaps:
        """Pair ``index`` in the dataset's training format (numpy ``float16`` flow, ``uint8`` classes)."""
        flow = self.flow[index].detach().cpu().numpy().astype(np.float16)
        return CorrespondenceMaps(flow, self.visibility[index].detach().cpu().numpy().astype(np.uint8))


def _pixel_grid(height: int, width: int, like: torch.Tensor) -> torch.Tensor:
    """``(H, W, 2)`` pixel-centre positions ``(col, row)``."""
    rows = torch.arange(height, device=like.device, dtype=like.dtype)
    cols = torch.arange(width, device=like.device, dtype=like.dtype)
    gy, gx = torch.meshgrid(rows, cols, indexing="ij")
    return torch.stack([gx, gy], dim=-1)


def _signed_area(xy: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """``(B, F)`` twice the signed image area of each face (its sign says which side faces the camera)."""
    batch, num_verts = xy.shape[:2]
    vidx = (faces.reshape(1, -1) + torch.arange(batch, device=xy.device)[:, None] * num_verts).reshape(-1)
    tri = xy.reshape(-1, 2).index_select(0, vidx).view(batch, -1, 3, 2)  # (B, F, 3, 2)
    e1 = tri[:, :, 1] - tri[:, :, 0]
    e2 = tri[:, :, 2] - tri[:, :, 0]
    return e1[..., 0] * e2[..., 1] - e1[..., 1] * e2[..., 0]


def _bilinear_depth(depth: torch.Tensor, pos: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Depth maps ``(B, h, w)`` at points ``pos (N, 2)`` of maps ``index (N,)``; ``inf`` unless all 4 neighbours are on the body.

    Exact on a planar surface however steep, where the nearest pixel's depth can be off by more than
    the tolerance (a pixel spanning several centimetres of a sloped surface).
    """
    _, src_h, src_w = depth.shape
    x0 = torch.floor(pos[:, 0])
    y0 = torch.floor(pos[:, 1])
    fx = (pos[:, 0] - x0).to(depth.dtype)
    fy = (pos[:, 1] - y0).to(depth.dtype)
    flat_depth = depth.reshape(-1)
    # the 4 neighbours' flat indices (clamped into the map: a neighbour outside it is masked below)
    x1, y1 = x0 + 1, y0 + 1
    in_x = ((x0 >= 0) & (x0 < src_w), (x1 >= 0) & (x1 < src_w))
    in_y = ((y0 >= 0) & (y0 < src_h), (y1 >= 0) & (y1 < src_h))
    col = (x0.clamp(0, src_w - 1).long(), x1.clamp(0, src_w - 1).long())
    base = index * (src_h * src_w)
    row = (base + y0.clamp(0, src_h - 1).long() * src_w, base + y1.clamp(0, src_h - 1).long() * src_w)
    total = torch.zeros_like(fx)
    finite = torch.ones_like(fx, dtype=torch.bool)
    for dx, dy, weight in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        value = flat_depth.index_select(0, row[dy] + col[dx])
        ok = in_x[dx] & in_y[dy] & torch.isfinite(value)
        finite &= ok
        total = total + weight * torch.where(ok, value, 0.0)
    return torch.where(finite, total, torch.inf)


@torch.no_grad()
def correspond_points(
    face: torch.Tensor,
    bary: torch.Tensor,
    target_index: torch.Tensor,
    source_index: torch.Tensor,
    target_xy: torch.Tensor,
    source: RenderedBody,
    faces: torch.Tensor,
    depth_tolerance: float = 0.03,
    compact: bool | None = None,
    mirror: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The core of :func:`correspond` on a list of target surface points instead of full frames.

    Point ``n`` lies on face ``face[n]`` (``long``, ``>= 0``) at barycentric weights ``bary[n]``
    ``(N, 3)`` of target mesh ``target_index[n]`` (a row of ``target_xy (Bt, V, 2)``, for the side the
    face turns to the camera) and is looked up in source mesh ``source_index[n]`` (a row of
    ``source.xy``, ``source.depth`` and ``source.raster``). Returns the point's position in that
    source image ``(N, 2)`` (pixels, ``source.xy``'s dtype) and whether it is visible there
    ``bool (N,)`` (the test of the module docstring). Each point's result is the same whatever else
    is in the list: callers pass only the pixels that show the body (a dataset writer) or every
    pixel (:func:`correspond`). Gathers are flat ``index_select`` calls, much cheaper on the CPU than
    advanced indexing. ``compact`` (default: on the CPU) runs the bilinear depth test only on the
    points it can still decide; the compaction waits for the device, so on a GPU it runs on all of
    them. Same result either way.

    ``mirror`` (:func:`mirror_vertices`): look up each point's *other side* instead, the point with the same
    weights on the mirrored corners ``mirror[faces[face]]`` (:func:`mirror_correspond`); the same-side test
    is then skipped (the mirrored point lies on another face), the depth tests decide.
    """
    sr = source.raster
    src_h, src_w = sr.size
    num_verts = source.xy.shape[1]
    if target_xy.shape[1] != num_verts:
        raise ValueError(f"target and source meshes differ: {target_xy.shape[1]} vs {num_verts} vertices")
    faces = faces.to(device=face.device, dtype=torch.long)
    vid = faces.index_select(0, face)  # (N, 3)
    if mirror is not None:
        vid = mirror.to(vid.device)[vid]
    gidx = (vid + (source_index * num_verts)[:, None]).reshape(-1)
    bary = bary.to(source.xy.dtype)
    # barycentric blends as sums over the 3 corners of contiguous (N, 3) columns, x and y apart
    # (the same sums, in the same order, as over a (N, 3, 2) gather, at a fraction of the cost)
    pos = torch.stack([(bary * source.xy[..., i].reshape(-1).index_select(0, gidx).view(-1, 3)).sum(-1)
                       for i in range(2)], -1)  # (N, 2)
    pos_z = (bary * source.depth.reshape(-1).index_select(0, gidx).view(-1, 3)).sum(-1)

    col = torch.floor(pos[:, 0] + 0.5)
    row = torch.floor(pos[:, 1] + 0.5)
    in_frame = (col >= 0) & (col < src_w) & (row >= 0) & (row < src_h)
    flat = source_index * (src_h * src_w) + row.clamp(0, src_h - 1).long() * src_w + col.clamp(0, src_w - 1).long()
    src_face = sr.face_id.reshape(-1).index_select(0, flat)
    src_depth = sr.depth.reshape(-1).index_select(0, flat)
    src_vid = faces.index_select(0, src_face.clamp_min(0))
    # a shared vertex: 9 comparisons of columns (a (N, 3, 3) comparison and any() cost several times more)
    adjacent = torch.zeros_like(face, dtype=torch.bool)
    for i in range(3):
        for j in range(3):
            adjacent |= src_vid[:, i] == vid[:, j]
    candidate = in_frame & (src_face >= 0)
    if mirror is None:  # the face turns the same side to the camera in both images (else it faces away there)
        num_faces = faces.shape[0]
        area_t = _signed_area(target_xy, faces).reshape(-1)
        area_s = area_t if source.xy is target_xy else _signed_area(source.xy, faces).reshape(-1)
        candidate &= (area_t.index_select(0, target_index * num_faces + face)
                      * area_s.index_select(0, source_index * num_faces + face)) > 0
    visible = candidate & (adjacent | ((src_depth - pos_z).abs() <= depth_tolerance))
    if compact is None:
        compact = face.device.type == "cpu"  # the compaction waits for the device
    if compact:  # the bilinear depth only where it can still decide
        todo = (candidate & ~visible).nonzero()[:, 0]
        depth_ok = (_bilinear_depth(sr.depth, pos.index_select(0, todo), source_index.index_select(0, todo))
                    - pos_z.index_select(0, todo)).abs() <= depth_tolerance
        visible.index_copy_(0, todo, depth_ok)
    else:
        visible |= candidate & ((_bilinear_depth(sr.depth, pos, source_index) - pos_z).abs() <= depth_tolerance)
    return pos, visible


@torch.no_grad()
def mirror_vertices(vertices: torch.Tensor, faces: torch.Tensor, face_parts: torch.Tensor) -> torch.Tensor:
    """``long (V,)``: for every vertex of a rest mesh ``vertices (V, 3)`` (canonical frame, facing the camera)
    its counterpart on the other side of its body part: the vertex of the same part nearest to the point
    reflected through the part's mid-depth plane (``z -> 2 * z_mid - z``). The front of a shirt maps to its
    back, the palm to the back of the hand. A vertex takes the part of its first face."""
    verts = vertices.float()
    num = verts.shape[0]
    part = torch.full((num,), -1, dtype=torch.long, device=verts.device)
    # scatter from the last face to the first, so the first face of each vertex writes last and wins
    flat = faces.long().flip(0).reshape(-1)
    part[flat] = face_parts.long().flip(0).repeat_interleave(3)
    out = torch.arange(num, device=verts.device)
    for p in part.unique().tolist():
        if p < 0:
            continue
        idx = (part == p).nonzero()[:, 0]
        v = verts[idx]
        z = v[:, 2]
        mid = 0.5 * (z.min() + z.max())
        reflected = torch.cat([v[:, :2], (2 * mid - z)[:, None]], 1)
        out[idx] = idx[torch.cdist(reflected, v).argmin(1)]
    return out


@torch.no_grad()
def mirror_correspond(target: RenderedBody, source: RenderedBody, faces: torch.Tensor, mirror: torch.Tensor,
                      depth_tolerance: float = 0.03) -> tuple[torch.Tensor, torch.Tensor]:
    """Where the *other side* of every target body point is seen in the source: ``(flow_px (B, H, W, 2),
    visible bool (B, H, W))``.

    A target pixel on face ``f`` at barycentric weights ``b`` is mapped to the point with the same weights on
    the mirrored vertices ``mirror[faces[f]]`` (:func:`mirror_vertices`), placed by the source's fit; it is
    visible when the source's z-buffer there is that point's depth (within ``depth_tolerance``) or belongs to
    a face sharing one of its vertices. For body regions the source does not show (the front of a person seen
    from the back) this gives the texture of the side it does show, in place of a guess.
    """
    pos, visible, _ = _frame_points(target, source, faces, depth_tolerance, mirror)
    flow = (pos - _pixel_grid(*pos.shape[1:3], pos)).float()
    return torch.where(visible.unsqueeze(-1), flow, flow.new_zeros(())), visible


def _frame_points(target: RenderedBody, source: RenderedBody, faces: torch.Tensor, depth_tolerance: float,
                  mirror: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`correspond_points` on every pixel of the target rasters: ``(pos (B, H, W, 2), visible, on_body)``."""
    tr = target.raster
    if target.xy.shape != source.xy.shape:
        raise ValueError(f"target and source must be the same mesh batch: {tuple(target.xy.shape)} vs "
                         f"{tuple(source.xy.shape)}")
    batch, height, width = tr.face_id.shape
    on_body = tr.face_id >= 0
    index = torch.arange(batch, device=tr.face_id.device).repeat_interleave(height * width)
    pos, visible = correspond_points(tr.face_id.reshape(-1).clamp_min(0), tr.bary.reshape(-1, 3), index, index,
                                     target.xy, source, faces, depth_tolerance, mirror=mirror)
    return pos.view(batch, height, width, 2), visible.view(batch, height, width) & on_body, on_body


@torch.no_grad()
def correspond(
    target: RenderedBody,
    source: RenderedBody,
    faces: torch.Tensor,
    depth_tolerance: float = 0.03,
) -> BodyCorrespondence:
    """Flow target -> source and the 3-class visibility of two renderings of one mesh (module docstring).

    ``target`` and ``source`` hold ``xy (B, V, 2)``, ``depth (B, V)`` and their rasters (the
    source raster may have another size: positions outside it are invisible); ``faces`` ``(F, 3)``
    is the mesh both were rendered with. :func:`correspond_points` on every target pixel: a few
    batched kernels, with no host synchronisation on a GPU.
    """
    pos, visible, on_body = _frame_points(target, source, faces, depth_tolerance)
    flow = (pos - _pixel_grid(*pos.shape[1:3], pos)).float()
    flow = torch.where(on_body.unsqueeze(-1), flow, flow.new_zeros(()))
    classes = torch.where(visible, VISIBLE, torch.where(on_body, INVISIBLE, BACKGROUND)).to(torch.uint8)
    return BodyCorrespondence(flow, classes)


def flow_to_normalised(flow_px: torch.Tensor) -> torch.Tensor:
    """Pixel offsets ``(B, H, W, 2)`` -> ``(B, 2, H, W)`` offsets in ``grid_sample``'s normalised units.

    The flow convention of :mod:`glocal_cli.models.flow` (``align_corners=False``: one pixel is
    ``2 / W`` in ``x`` and ``2 / H`` in ``y``), for source and target frames of the same size.
    """
    height, width = flow_px.shape[1:3]
    scale = flow_px.new_tensor([2.0 / width, 2.0 / height])
    return (flow_px * scale).permute(0, 3, 1, 2)


def warp_image(source: torch.Tensor, flow_px: torch.Tensor, padding_mode: str = "border") -> torch.Tensor:
    """Backward-warp ``source (B, C, H, W)`` by a pixel flow ``(B, H, W, 2)`` of the same size (bilinear).

    Output pixel ``(col, row)`` samples the source at ``(col, row) + flow``; the same sampling as
    :func:`glocal_cli.models.flow.warp` (which it calls) and :func:`glocal_cli.data.correspondence.warp_by_flow`.
    """
    if tuple(source.shape[-2:]) != tuple(flow_px.shape[1:3]):
        raise ValueError(f"source {tuple(source.shape[-2:])} and flow {tuple(flow_px.shape[1:3])} sizes differ")
    return warp(source, flow_to_normalised(flow_px.to(source.dtype)), padding_mode=padding_mode)
