"""SynthPeople on real body shapes (``glocal prepare-data synthetic --body anny``).

One identity is one Anny body shape (:mod:`~glocal_cli.synth.anny_look`) wearing clothes painted
on its surface, plus a skirt or dress and long hair as meshes of their own
(:mod:`~glocal_cli.synth.anny_mesh`), rendered in ``K`` poses (:mod:`~glocal_cli.synth.anny_poses`)
as one batch through the pure-PyTorch rasteriser (:func:`glocal_cli.body.render.rasterize`):

1. pose the body and the garments with the body's linear blend skinning, project them with a
   weak-perspective camera per image, rasterise all ``K`` images at once;
2. interpolate the vertices' texture channels at every covered pixel, colour and classify them
   (:func:`~glocal_cli.synth.anny_look.colour_pixels`), light them from the interpolated vertex
   normals (ambient + one key light), composite over a studio background with a soft floor shadow,
   smooth the silhouettes (3x3 average at part edges) and add a little sensor noise;
3. keypoints: the body's 18 keypoints projected; a point is missing when it is out of the frame, or
   the surface drawn at its pixel is not one of its own parts (or a garment over them) or lies more
   than a part's thickness in front of it (turned away, behind the torso, behind the other arm);
4. correspondence of pairs: :func:`glocal_cli.body.correspond.correspond` on the same meshes, so the
   flow target -> source and the visible / invisible / background classes are exact for the body,
   the skirt and the hair alike (every drawn pixel is a mesh surface point).

All randomness comes from ``(seed, identity)``; rendering runs single-threaded in PyTorch, so an
identity's files are byte-identical whatever the number of workers.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from glocal_cli.body import load_body_model
from glocal_cli.body.base import BODY_PARTS, BodyModel
from glocal_cli.body.correspond import (
    INVISIBLE,
    VISIBLE,
    BodyCorrespondence,
    correspond_points,
    correspondence_path,
    save_correspondence,
)
from glocal_cli.body.render import Raster, RenderedBody, rasterize, vertex_normals
from glocal_cli.data import atomic_write_text
from glocal_cli.data.config import AnnySynthConfig
from glocal_cli.data.keypoints import KEYPOINT_NAMES, Pose
from glocal_cli.data.layout import IMAGES_DIR, PARSING_DIR
from glocal_cli.errors import InputError
from glocal_cli.synth.anny_look import Look, colour_pixels, sample_look
from glocal_cli.synth.anny_mesh import HAIR_PART, SKIRT_PART, Garment, body_tables, hair_mesh, skirt_mesh
from glocal_cli.synth.anny_poses import (
    RealPoses,
    _rodrigues,
    frame_cameras,
    merge_real_pose,
    mirror_keypoints,
    mirror_pose,
    sample_poses,
)
from glocal_cli.synth.poses import view_of
from glocal_cli.synth.writer import image_name, marker_path, read_marker, write_png

__all__ = [
    "RenderedIdentity",
    "anny_pairs",
    "identity_correspondence",
    "load_anny_body",
    "read_anny_marker",
    "render_anny_identity",
    "sample_identity_look",
    "write_anny_identity",
]

_P = {name: i for i, name in enumerate(BODY_PARTS)}

# For each keypoint: the mesh parts it lies on and how far (metres) in front of it the drawn surface
# may be while it still counts as seen (about the thickness of the part around it).
_ATTACHED: dict[str, tuple[tuple[str, ...], float]] = {
    "nose": (("head",), 0.035),
    "neck": (("head", "torso", "hair"), 0.14),
    "r_shoulder": (("torso", "upperarm.R", "hair"), 0.12),
    "r_elbow": (("upperarm.R", "lowerarm.R"), 0.09),
    "r_wrist": (("lowerarm.R", "hand.R"), 0.08),
    "l_shoulder": (("torso", "upperarm.L", "hair"), 0.12),
    "l_elbow": (("upperarm.L", "lowerarm.L"), 0.09),
    "l_wrist": (("lowerarm.L", "hand.L"), 0.08),
    "r_hip": (("torso", "upperleg.R", "skirt"), 0.16),
    "r_knee": (("upperleg.R", "lowerleg.R", "skirt"), 0.1),
    "r_ankle": (("lowerleg.R", "foot.R", "skirt"), 0.1),
    "l_hip": (("torso", "upperleg.L", "skirt"), 0.16),
    "l_knee": (("upperleg.L", "lowerleg.L", "skirt"), 0.1),
    "l_ankle": (("lowerleg.L", "foot.L", "skirt"), 0.1),
    "r_eye": (("head",), 0.03),
    "l_eye": (("head",), 0.03),
    "r_ear": (("head", "hair"), 0.045),
    "l_ear": (("head", "hair"), 0.045),
}
_PART_ID = {**_P, "skirt": SKIRT_PART, "hair": HAIR_PART}
_SKIRT_EXTRA = 0.2  # a skirt hangs further in front of the hips and knees than the skin does


@functools.lru_cache(maxsize=2)
def load_anny_body(spec: str = "anny") -> BodyModel:
    """The Anny body (cached per process), checked for what SynthPeople needs."""
    body = load_body_model(spec)
    for key in ("phenotype_samples", "phenotype_coeffs", "skin_weights"):
        if not hasattr(body, key):
            raise InputError(f"body model {spec!r}: no {key} (SynthPeople --body anny needs the Anny export)")
    return body


@functools.lru_cache(maxsize=2)
def _heights(body: BodyModel) -> np.ndarray:
    """Standing height (m) of every phenotype sample, from the template's extreme vertices."""
    v = body.v_template
    top = torch.topk(-v[:, 1], 32).indices
    low = torch.topk(v[:, 1], 32).indices
    idx = torch.cat([top, low])
    with torch.no_grad():
        pts = v[idx][None] + torch.einsum("ns,svc->nvc", body.phenotype_coeffs, body.shapedirs[:, idx])
    y = pts[..., 1]
    return (y[:, 32:].amax(1) - y[:, :32].amin(1)).double().cpu().numpy()


def identity_stream(seed: int, index: int) -> np.random.Generator:
    """The random stream of one Anny identity: a function of ``(seed, index)`` only."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(index), 0xA22]))


@dataclass
class RenderedIdentity:
    """One identity rendered in ``K`` poses, with what its files and its pairs' correspondence need."""

    look: Look
    images: np.ndarray
    """``uint8 (K, H, W, 3)``."""
    parsing: np.ndarray
    """``uint8 (K, H, W)`` 8 classes."""
    keypoints: list[Pose]
    yaws: list[float]
    pose_sources: list[str]
    bodies: RenderedBody
    """The ``K`` projected meshes and their rasters (for :func:`identity_correspondence`)."""
    faces: torch.Tensor
    """``(F, 3)`` the identity's mesh (body + garments)."""
    part: np.ndarray
    """``uint8 (K, H, W)`` mesh part per pixel (body parts, then skirt and hair)."""
    attributes: torch.Tensor
    """``(N, C)`` per-vertex texture channels of :attr:`faces`' vertices (``anny_mesh.CHANNELS``)."""

    @property
    def views(self) -> list[str]:
        """``front`` / ``side`` / ``back`` per image."""
        return [view_of(y) for y in self.yaws]


def _yaw_of(orient: np.ndarray) -> float:
    f = _rodrigues(orient.astype(np.float64)) @ np.array([0.0, 0.0, -1.0])
    return float(math.atan2(-f[0], -f[2]))


def _background(look: Look, height: int, width: int, feet_y: float | None = None) -> np.ndarray:
    """Studio background ``float32 (H, W, 3)``: plain, gradient, wall and floor (the floor line just
    above ``feet_y``), or a faint wall texture (the same behind every pose of the identity)."""
    bg = look.background
    c1 = np.asarray(bg["colour"], np.float32)
    c2 = np.asarray(bg["colour2"], np.float32)
    kind = bg["kind"]
    ys = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    xs = np.linspace(-1.0, 1.0, width, dtype=np.float32)[None, :, None]
    if kind == "gradient":
        img = c1 + (c2 - c1) * np.clip(ys * 0.8 + 0.2 * xs * xs, 0, 1)
    elif kind == "floor":
        line = (feet_y / height - 0.04) if feet_y is not None else 0.85
        t = 1.0 / (1.0 + np.exp(-(ys - line) * 60.0))
        img = c1 * (1 - t) + c2 * t + np.zeros_like(xs)
    else:
        img = c1 * (1.0 - 0.05 * ys) + np.zeros_like(xs)
    img = np.broadcast_to(img, (height, width, 3)).astype(np.float32).copy()
    if kind == "texture":
        srng = np.random.default_rng(int(bg["seed"]))
        tex = bg.get("texture")
        if tex == "stripes":
            period = srng.uniform(0.06, 0.15) * width
            band = (np.mod(np.arange(width) / period, 1.0) < 0.5).astype(np.float32)
            img *= (1.0 - 0.04 * band)[None, :, None]
        elif tex == "tiles":
            step = max(int(srng.uniform(0.12, 0.25) * width), 4)
            grid = np.zeros((height, width), np.float32)
            grid[::step, :] = 1
            grid[:, ::step] = 1
            img *= (1.0 - 0.08 * cv2.GaussianBlur(grid, (3, 3), 0))[..., None]
        else:
            noise = srng.standard_normal((height, width)).astype(np.float32)
            noise = cv2.GaussianBlur(noise, (0, 0), sigmaX=max(width / 40.0, 1.0))
            noise /= max(float(np.abs(noise).max()), 1e-6)
            img *= (1.0 + 0.05 * noise)[..., None]
    return img


def _floor_shadow(img: np.ndarray, feet: tuple[float, float, float], strength: float) -> np.ndarray:
    """A soft elliptic shadow under the feet (``feet``: x, y, half width in pixels), in place."""
    fx, fy, half = feet
    height, width = img.shape[:2]
    rx, ry = max(half * 1.4, 2.0), max(half * 0.25, 1.5)
    y0, y1 = max(int(fy - 3 * ry), 0), min(int(fy + 3 * ry) + 1, height)
    x0, x1 = max(int(fx - 3 * rx), 0), min(int(fx + 3 * rx) + 1, width)
    if y1 <= y0 or x1 <= x0:
        return img
    yy = ((np.arange(y0, y1, dtype=np.float32) - fy) / ry)[:, None] ** 2
    xx = ((np.arange(x0, x1, dtype=np.float32) - fx) / rx)[None, :] ** 2
    img[y0:y1, x0:x1] *= (1.0 - strength * np.exp(-(xx + yy)))[..., None]
    return img


def _pick_poses(body: BodyModel, rng: np.random.Generator, k: int, real: RealPoses, fraction: float
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """``K`` poses: orientations, body poses, the annotated keypoints of real poses (NaN rows for
    sampled ones) and which were seen, and where each pose came from."""
    use_real = (rng.random(k) < fraction) if len(real) else np.zeros(k, bool)
    orient, pose = sample_poses(body, rng, k)
    real_xy = np.full((k, 18, 2), np.nan, np.float32)
    real_vis = np.zeros((k, 18), bool)
    sources = ["sampler"] * k
    for i in np.flatnonzero(use_real):
        j = int(rng.integers(len(real)))
        o, p = real.orient[j:j + 1], real.pose[j:j + 1]
        xy, vis = real.keypoints[j], real.visible[j]
        sources[i] = real.names[j]
        if rng.random() < 0.5:
            o, p = mirror_pose(body, o, p)
            xy, vis = mirror_keypoints(xy, vis)
            sources[i] += " (mirrored)"
        orient[i], pose[i] = o[0], merge_real_pose(body, pose[i], p[0], vis)
        real_xy[i], real_vis[i] = xy, vis
    return orient, pose, real_xy, real_vis, sources


@torch.no_grad()
def render_anny_identity(
    body: BodyModel,
    seed: int,
    index: int,
    poses_per_identity: int,
    height: int,
    width: int,
    real: RealPoses,
    options: AnnySynthConfig | None = None,
    look: Look | None = None,
    poses: tuple[np.ndarray, np.ndarray] | None = None,
) -> RenderedIdentity:
    """Render identity ``index`` in ``poses_per_identity`` poses (no files written).

    ``look`` replaces the identity's drawn appearance and ``poses`` (``global_orient (K, 3)``,
    ``body_pose (K, P, 3)``) its drawn poses (demos and tests; the rest stays random from the stream).
    """
    opts = options or AnnySynthConfig()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # byte-identical results whatever the machine's thread count
    try:
        return _render(body, seed, index, poses_per_identity, height, width, real, opts, look, poses)
    finally:
        torch.set_num_threads(threads)


def sample_identity_look(body: BodyModel, seed: int, index: int) -> Look:
    """The look that identity ``index`` of ``seed`` gets (the first draw of its stream)."""
    return sample_look(identity_stream(seed, index), body.phenotype_samples.cpu().numpy(),
                       body.phenotype_coeffs.cpu().numpy(), _heights(body))


def _render(body: BodyModel, seed: int, index: int, k: int, height: int, width: int, real: RealPoses,
            opts: AnnySynthConfig, look_override: Look | None, poses_override: tuple[np.ndarray, np.ndarray] | None
            ) -> RenderedIdentity:
    rng = identity_stream(seed, index)
    tables = body_tables(body)
    heights = _heights(body)
    look = sample_look(rng, body.phenotype_samples.cpu().numpy(), body.phenotype_coeffs.cpu().numpy(), heights)
    if look_override is not None:
        look = look_override
    shape = torch.from_numpy(look.shape)[None]
    rest_v, rest_j = body.rest(shape)
    rest_np = rest_v[0, torch.from_numpy(tables.vertex_ids)].double().numpy()
    joints_np = rest_j[0].double().numpy()
    stature = float(rest_np[:, 1].max() - rest_np[:, 1].min())
    garments: list[Garment] = []
    if look.has_skirt:
        garments.append(skirt_mesh(rest_np, joints_np, tables.skin, tables, look.skirt_length, look.skirt_flare))
    if look.has_hair_shell:
        garments.append(hair_mesh(rest_np, joints_np, tables.skin, tables, look.hair_end, look.hair_thickness,
                                  look.hair_sweep, look.hair_wave))
    # one mesh: the body's render mesh, then each garment
    n_body = len(tables.vertex_ids)
    faces_np, parts_np, attrs_np = [tables.faces], [tables.face_parts], [tables.attributes]
    rest_all, weights_all = [rest_np.astype(np.float32)], [tables.skin]
    offset = n_body
    for g in garments:
        faces_np.append(g.faces + offset)
        parts_np.append(np.full(len(g.faces), g.part, np.int64))
        attrs_np.append(g.attributes)
        rest_all.append(g.vertices)
        weights_all.append(g.weights)
        offset += len(g.vertices)
    faces = torch.from_numpy(np.concatenate(faces_np))
    face_parts = torch.from_numpy(np.concatenate(parts_np))
    attrs = torch.from_numpy(np.concatenate(attrs_np))
    rest = torch.from_numpy(np.concatenate(rest_all))
    weights = torch.from_numpy(np.concatenate(weights_all))
    rest_normals = vertex_normals(rest[None], faces)[0] if opts.shading else None

    orient_np, pose_np, real_xy, real_vis, sources = _pick_poses(body, rng, k, real, opts.real_pose_fraction)
    if poses_override is not None:
        orient_np, pose_np = (np.asarray(a, np.float32).copy() for a in poses_override)
        real_xy[:], sources = np.nan, ["given"] * k
    if look.has_skirt and poses_override is None:
        _narrow_stride(body, pose_np)
    orient, pose = torch.from_numpy(orient_np), torch.from_numpy(pose_np)
    rot, trans = body.joint_transforms(orient, pose, rest_j.expand(k, -1, -1))
    n_all = weights.shape[0]  # linear blend skinning: (K, N, 3, 3) per-vertex blended rotations
    blend = (weights @ rot.permute(1, 0, 2, 3).reshape(rot.shape[1], -1)).reshape(n_all, k, 3, 3).transpose(0, 1)
    verts = torch.einsum("knxy,ny->knx", blend, rest) + torch.einsum("nj,kjx->knx", weights, trans)
    keypoints3d = body(orient, pose, shape.expand(k, -1), vertices=False).keypoints

    cams = frame_cameras(verts[:, :n_body], keypoints3d, rng, height, width, real_xy, real_vis, stature,
                         opts.closeup)
    cam_t = torch.from_numpy(cams)
    xy = verts[..., :2] * cam_t[:, None, :1] + cam_t[:, None, 1:]
    depth = verts[..., 2].contiguous()
    raster = rasterize(xy, depth, faces, height, width, face_parts)
    bodies = RenderedBody(xy, depth, raster)

    # ---- per covered pixel: texture channels, colour, class, light
    hw = height * width
    flat_face = raster.face_id.reshape(-1)
    where = torch.nonzero(flat_face >= 0)[:, 0]  # covered pixels, image after image
    b_idx = torch.div(where, hw, rounding_mode="floor")
    counts = torch.bincount(b_idx, minlength=k).tolist()
    # torch's index_select is much faster than advanced indexing on the CPU
    fid = flat_face.index_select(0, where)
    bary = raster.bary.reshape(-1, 3).index_select(0, where)  # (n, 3)
    corner = faces.index_select(0, fid)  # (n, 3)
    ch = _blend_rows(attrs, corner, bary).numpy()
    part_px = raster.part.reshape(-1).index_select(0, where).numpy()
    px = np.repeat((1.0 / cams[:, 0] * (1.7 / max(stature, 0.5))).astype(np.float32), counts)
    colour, cls = colour_pixels(look, tables, part_px, ch, px)
    if rest_normals is not None:
        # vertex normals posed by the blended skinning rotations, interpolated at the pixel
        posed_normals = torch.einsum("knxy,ny->knx", blend, rest_normals)
        vid = (b_idx * posed_normals.shape[1])[:, None] + corner
        nrm = _blend_rows(posed_normals.reshape(-1, 3), vid, bary)
        nrm = torch.nn.functional.normalize(nrm, dim=-1).numpy()
        nrm = np.where(nrm[:, 2:3] > 0, -nrm, nrm)  # two-sided: the side facing the camera
        lam = np.maximum(nrm @ look.light, 0.0)
        rim = np.clip(1.0 + nrm[:, 2], 0.0, 1.0) ** 3 * 0.12  # grazing edges: a little darker
        shade = look.ambient + look.diffuse * lam - rim
        colour = colour * (shade[:, None] * look.tint[None, :])

    where_np = where.numpy()
    part_map = raster.part.numpy().astype(np.uint8)
    images = np.empty((k, height, width, 3), np.uint8)
    parsing = np.zeros(k * hw, np.uint8)
    parsing[where_np] = cls
    parsing = parsing.reshape(k, height, width)
    kp2d = keypoints3d[..., :2] * cam_t[:, None, :1] + cam_t[:, None, 1:]
    wall = _background(look, height, width) if look.background["kind"] != "floor" else None
    ends = np.cumsum(counts)
    for i in range(k):
        sel = slice(int(ends[i] - counts[i]), int(ends[i]))
        feet = _feet(xy[i, :n_body].numpy(), part_map[i], height, width)
        canvas = wall.copy() if wall is not None else _background(look, height, width, feet and feet[1])
        if feet is not None:
            _floor_shadow(canvas, feet, float(look.background["shadow"]))
        canvas.reshape(hw, 3)[where_np[sel] - i * hw] = colour[sel]
        if opts.antialias:
            canvas = _smooth_edges(canvas, part_map[i])
        if opts.noise > 0:
            grain = np.frombuffer(rng.bytes(hw), np.uint8).reshape(height, width)
            canvas += ((grain % (2 * opts.noise + 1)).astype(np.float32) - opts.noise)[..., None]
        images[i] = np.clip(canvas + 0.5, 0, 255).astype(np.uint8)
    keypoints = _visible_keypoints(kp2d.numpy(), keypoints3d[..., 2].numpy(), raster, height, width)
    yaws = [_yaw_of(orient_np[i]) for i in range(k)]
    return RenderedIdentity(look, images, parsing, keypoints, yaws, sources, bodies, faces, part_map, attrs)


def _blend_rows(table: torch.Tensor, corner: torch.Tensor, bary: torch.Tensor) -> torch.Tensor:
    """Rows ``corner (n, 3)`` of ``table (N, C)`` blended by ``bary (n, 3)``: ``(n, C)``.

    The same products summed in the same order as ``(table[corner] * bary[..., None]).sum(1)``
    (bit for bit), without the ``(n, 3, C)`` temporary and its strided reduction.
    """
    out = table.index_select(0, corner[:, 0]) * bary[:, 0:1]
    out += table.index_select(0, corner[:, 1]) * bary[:, 1:2]
    out += table.index_select(0, corner[:, 2]) * bary[:, 2:3]
    return out


def _narrow_stride(body: BodyModel, pose: np.ndarray) -> None:
    """In place: hips of a skirt or dress wearer swing and spread at most 0.3 rad (legs stay under it)."""
    names = list(body.pose_joints)
    for joint in ("hip_l", "hip_r"):
        j = names.index(joint)
        pose[:, j, 0] = np.clip(pose[:, j, 0] * 0.7, -0.3, 0.3)
        pose[:, j, 2] = np.clip(pose[:, j, 2], -0.3, 0.3)


def _feet(xy: np.ndarray, part: np.ndarray, height: int, width: int) -> tuple[float, float, float] | None:
    """Floor shadow anchor: the lowest body point's x, y and the body's half width, when the feet show."""
    feet_ids = (_P["foot.L"], _P["foot.R"])
    if not np.isin(part, feet_ids).any():
        return None
    low = float(xy[:, 1].max())
    if low > height + 2:
        return None
    near = xy[xy[:, 1] > low - 0.04 * height]
    return float(near[:, 0].mean()), low, float(0.5 * (near[:, 0].max() - near[:, 0].min()) + 0.05 * width)


def _smooth_edges(img: np.ndarray, part: np.ndarray) -> np.ndarray:
    """3x3 average blended in where a pixel's 4-neighbours show another part (silhouettes, occlusions)."""
    p = part.astype(np.int16)
    edge = np.zeros(p.shape, bool)
    edge[1:] |= p[1:] != p[:-1]
    edge[:-1] |= p[1:] != p[:-1]
    edge[:, 1:] |= p[:, 1:] != p[:, :-1]
    edge[:, :-1] |= p[:, 1:] != p[:, :-1]
    blur = cv2.blur(img, (3, 3))
    out = img.copy()
    out[edge] = 0.4 * img[edge] + 0.6 * blur[edge]
    return out


def _visible_keypoints(xy: np.ndarray, z: np.ndarray, raster: Raster, height: int, width: int) -> list[Pose]:
    """The 18 keypoints per image, missing when out of the frame or hidden (module docstring, step 3)."""
    part = raster.part.numpy()
    zbuf = raster.depth.numpy()
    out = []
    for i in range(xy.shape[0]):
        vis = np.zeros(18, bool)
        for j, name in enumerate(KEYPOINT_NAMES):
            c, r = int(round(float(xy[i, j, 0]))), int(round(float(xy[i, j, 1])))
            if not (0 <= c < width and 0 <= r < height):
                continue
            parts, tol = _ATTACHED[name]
            drawn = int(part[i, r, c])
            allowed = {_PART_ID[p] for p in parts}
            if drawn not in allowed:
                continue
            if drawn == SKIRT_PART:
                tol += _SKIRT_EXTRA
            vis[j] = bool(zbuf[i, r, c] >= z[i, j] - tol)
        out.append(Pose(xy[i].astype(np.float32), vis))
    return out


def anny_pairs(k: int, per_image: int = 2) -> list[tuple[int, int]]:
    """``(source, target)`` pose indices of an identity's pairs, in target order: each pose is the
    target of the next pose and (``per_image`` 2, ``K >= 3``) of the one half-way round."""
    out = []
    for j in range(k):
        sources = {(j + 1) % k} if per_image == 1 else {(j + 1) % k, (j + k // 2) % k}
        for i in sorted(sources - {j}):
            out.append((i, j))
    return out


def identity_correspondence(ident: RenderedIdentity, pairs: list[tuple[int, int]], depth_tolerance: float = 0.03
                            ) -> BodyCorrespondence:
    """Flow target -> source and visibility of ``pairs`` ``(source, target)`` of one identity.

    :func:`~glocal_cli.body.correspond.correspond_points` on the covered pixels of every pair's
    target, all pairs in one list (background pixels need no work: they are background in the
    result), looked up in the identity's ``K`` rendered poses directly (no copy of a raster per
    pair), then scattered into full frames. Same maps as :func:`~glocal_cli.body.correspond.correspond`
    on the full frames.
    """
    b, r = ident.bodies, ident.bodies.raster
    k, height, width = r.face_id.shape
    hw = height * width
    n = len(pairs)
    src_idx = torch.tensor([s for s, _ in pairs], dtype=torch.long)
    tgt_idx = torch.tensor([t for _, t in pairs], dtype=torch.long)
    flat_face = r.face_id.reshape(-1)
    covered = torch.nonzero(flat_face >= 0)[:, 0]  # flat (image, pixel) of the covered pixels, image by image
    counts = torch.bincount(torch.div(covered, hw, rounding_mode="floor"), minlength=k)
    starts = torch.cumsum(counts, 0) - counts
    per_pair = counts.index_select(0, tgt_idx)
    pair = torch.repeat_interleave(torch.arange(n), per_pair)  # the pair of each point
    first = torch.cumsum(per_pair, 0) - per_pair
    rank = torch.arange(pair.numel()) - first.index_select(0, pair)  # the point's place in its target's list
    point = covered.index_select(0, starts.index_select(0, tgt_idx).index_select(0, pair) + rank)
    target_index = tgt_idx.index_select(0, pair)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        pos, visible = correspond_points(flat_face.index_select(0, point), r.bary.reshape(-1, 3).index_select(0, point),
                                         target_index, src_idx.index_select(0, pair), b.xy, b, ident.faces,
                                         depth_tolerance)
    finally:
        torch.set_num_threads(threads)
    pix = point - target_index * hw
    pix_f = pix.to(pos.dtype)  # exact: integers far below 2**24, so the float row and column are too
    row = torch.floor(pix_f / width)
    grid = torch.stack([pix_f - row * width, row], -1)
    dest = pair * hw + pix
    flow = torch.zeros(n * hw, 2)
    vis = torch.zeros(n * hw, dtype=torch.uint8)
    flow.index_copy_(0, dest, (pos - grid).float())
    vis.index_copy_(0, dest, torch.where(visible, VISIBLE, INVISIBLE).to(torch.uint8))
    return BodyCorrespondence(flow.view(n, height, width, 2), vis.view(n, height, width))


def write_anny_identity(
    out: Path,
    seed: int,
    index: int,
    poses_per_identity: int,
    height: int,
    width: int,
    real: RealPoses,
    options: AnnySynthConfig | None = None,
    body: BodyModel | None = None,
) -> dict[str, Any]:
    """Render identity ``index`` and write its images, parsing maps, pair correspondence and marker.

    Returns the marker record (the flat kind's fields, plus ``pairs``: ``[source, target]`` names).
    """
    opts = options or AnnySynthConfig()
    body = body or load_anny_body()
    ident = render_anny_identity(body, seed, index, poses_per_identity, height, width, real, opts)
    names = [image_name(index, k) for k in range(poses_per_identity)]
    images = []
    for k, name in enumerate(names):
        write_png(out / IMAGES_DIR / name, ident.images[k])
        write_png(out / PARSING_DIR / f"{Path(name).stem}.png", ident.parsing[k])
        kp = ident.keypoints[k]
        images.append({
            "name": name,
            "xy": [[round(float(x), 3), round(float(y), 3)] for x, y in kp.xy],
            "visible": [bool(v) for v in kp.visible],
            "view": ident.views[k],
            "yaw": round(ident.yaws[k], 5),
            "pose": ident.pose_sources[k],
        })
    pairs = anny_pairs(poses_per_identity, opts.pairs_per_image)
    corr = identity_correspondence(ident, pairs, opts.depth_tolerance)
    for p, (s, t) in enumerate(pairs):  # float32 flow: saving rounds it to float16 once
        save_correspondence(correspondence_path(out, names[t], names[s]), corr.flow[p], corr.visibility[p])
    record = {"identity": index, "appearance": ident.look.describe(), "images": images,
              "pairs": [[names[s], names[t]] for s, t in pairs]}
    atomic_write_text(marker_path(out, index), json.dumps(record, separators=(",", ":")) + "\n")
    return record


def read_anny_marker(out: Path, index: int, poses_per_identity: int) -> dict[str, Any] | None:
    """The marker of a finished Anny identity, or ``None`` when it or one of its files (images, parsing maps,
    pair correspondence) is missing."""
    record = read_marker(out, index, poses_per_identity, _anny_image_files)
    pairs = None if record is None else record.get("pairs")
    if not isinstance(pairs, list) or not all(
            isinstance(pair, list) and len(pair) == 2 and correspondence_path(out, pair[1], pair[0]).is_file()
            for pair in pairs):
        return None
    return record


def _anny_image_files(out: Path, name: str) -> tuple[Path, Path]:
    """The image and parsing map of image ``name`` (the Anny kind has no surface map)."""
    return out / IMAGES_DIR / name, out / PARSING_DIR / f"{Path(name).stem}.png"


# ------------------------------------------------------------------------- worker processes

_WORKER: dict[str, Any] = {}


def init_anny_worker(real_file: str, options: dict[str, Any]) -> None:
    """Process-pool initializer: one thread, the body and the real poses loaded once; Ctrl-C is
    left to the parent."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    _WORKER["real"] = RealPoses(real_file or None)
    _WORKER["options"] = AnnySynthConfig(**options)
    _WORKER["body"] = load_anny_body()


def anny_work(job: tuple[str, int, int, int, int, int]) -> dict[str, Any]:
    """Process-pool task ``(out, seed, index, poses_per_identity, height, width)``."""
    if "body" not in _WORKER:
        raise RuntimeError("init_anny_worker was not called in this process")
    out, seed, index, k, height, width = job
    return write_anny_identity(Path(out), seed, index, k, height, width, _WORKER["real"], _WORKER["options"],
                               _WORKER["body"])
