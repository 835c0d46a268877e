"""SynthPeople on real body shapes (``glocal prepare-data synthetic --body anny``).

One identity is one Anny body shape (:mod:`~glocal_cli.data.synth.anny_look`) wearing clothes painted
on its surface, plus a skirt or dress and long hair as meshes of their own
(:mod:`~glocal_cli.data.synth.anny_mesh`), rendered in ``K`` poses (:mod:`~glocal_cli.data.synth.anny_poses`)
as one batch through the pure-PyTorch rasteriser (:func:`glocal_cli.body.render.rasterize`):

1. pose the body and the garments with the body's linear blend skinning, project them with a
   weak-perspective camera per image, rasterise all ``K`` images at once;
2. interpolate the vertices' texture channels at every covered pixel, colour and classify them
   (:func:`~glocal_cli.data.synth.anny_look.colour_pixels`), light them from the interpolated vertex
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

from glocal_cli.body.base import BODY_PARTS, BodyModel
from glocal_cli.body.correspond import (
    BodyCorrespondence,
    correspond,
    correspondence_path,
    save_correspondence,
)
from glocal_cli.body.render import Raster, RenderedBody, rasterize, vertex_normals
from glocal_cli.data import atomic_write_text
from glocal_cli.data.config import AnnySynthConfig
from glocal_cli.data.keypoints import KEYPOINT_NAMES, Pose
from glocal_cli.data.layout import IMAGES_DIR, PARSING_DIR
from glocal_cli.data.synth.anny_look import Look, colour_pixels, sample_look
from glocal_cli.data.synth.anny_mesh import HAIR_PART, SKIRT_PART, Garment, body_tables, hair_mesh, skirt_mesh
from glocal_cli.data.synth.anny_poses import RealPoses, frame_cameras, mirror_pose, sample_poses
from glocal_cli.data.synth.poses import view_of
from glocal_cli.data.synth.writer import image_name, marker_path, write_png

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
    from glocal_cli.body import load_body_model
    from glocal_cli.errors import InputError

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
    from glocal_cli.data.synth.anny_poses import _rodrigues

    f = _rodrigues(orient.astype(np.float64)) @ np.array([0.0, 0.0, -1.0])
    return float(math.atan2(-f[0], -f[2]))


def _background(look: Look, height: int, width: int, rng: np.random.Generator, feet: tuple[float, float, float] | None
                ) -> np.ndarray:
    """Studio background ``float32 (H, W, 3)``: plain, gradient, wall and floor, or a faint texture,
    with a soft floor shadow under the feet (``feet``: x, y, half width in pixels)."""
    bg = look.background
    c1 = np.asarray(bg["colour"], np.float32)
    c2 = np.asarray(bg["colour2"], np.float32)
    kind = bg["kind"]
    ys = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    xs = np.linspace(-1.0, 1.0, width, dtype=np.float32)[None, :, None]
    if kind == "gradient":
        t = np.clip(ys * 0.8 + 0.2 * xs * xs, 0, 1)
        img = c1 + (c2 - c1) * t
    elif kind == "floor":
        line = (feet[1] / height - 0.04) if feet is not None else 0.85
        t = 1.0 / (1.0 + np.exp(-(ys - line) * 60.0))
        img = c1 * (1 - t) + c2 * t + np.zeros_like(xs)
    else:
        img = c1 * (1.0 - 0.05 * ys) + np.zeros_like(xs)
    img = np.broadcast_to(img, (height, width, 3)).astype(np.float32).copy()
    if kind == "texture":
        srng = np.random.default_rng(int(bg["seed"]))  # the same wall behind every pose
        tex = bg.get("texture")
        if tex == "stripes":
            period = srng.uniform(0.06, 0.15) * width
            band = (np.mod(np.arange(width) / period, 1.0) < 0.5).astype(np.float32)
            img *= (1.0 - 0.04 * band)[None, :, None]
        elif tex == "tiles":
            step = int(srng.uniform(0.12, 0.25) * width)
            grid = np.zeros((height, width), np.float32)
            grid[::max(step, 4), :] = 1
            grid[:, ::max(step, 4)] = 1
            img *= (1.0 - 0.08 * cv2.GaussianBlur(grid, (3, 3), 0))[..., None]
        else:
            noise = srng.standard_normal((height, width)).astype(np.float32)
            noise = cv2.GaussianBlur(noise, (0, 0), sigmaX=max(width / 40.0, 1.0))
            noise /= max(float(np.abs(noise).max()), 1e-6)
            img *= (1.0 + 0.05 * noise)[..., None]
    if feet is not None:
        fx, fy, half = feet
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        d = ((xx - fx) / max(half * 1.4, 2.0)) ** 2 + ((yy - fy) / max(half * 0.25, 1.5)) ** 2
        img *= (1.0 - float(bg["shadow"]) * np.exp(-d))[..., None]
    return img


def _pick_poses(body: BodyModel, rng: np.random.Generator, k: int, real: RealPoses, fraction: float
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """``K`` poses: orientations, body poses, fitted cameras (NaN rows for sampled poses), fitted feet
    lines, and where each came from."""
    use_real = (rng.random(k) < fraction) if len(real) else np.zeros(k, bool)
    orient, pose = sample_poses(body, rng, k)
    cams = np.full((k, 3), np.nan, np.float32)
    feet = np.full(k, np.nan, np.float32)
    sources = ["sampler"] * k
    for i in np.flatnonzero(use_real):
        j = int(rng.integers(len(real)))
        o, p = real.orient[j:j + 1], real.pose[j:j + 1]
        cam = real.camera[j].copy()
        sources[i] = real.names[j]
        if rng.random() < 0.5:
            o, p = mirror_pose(body, o, p)
            cam[1] = 175.0 - cam[1]  # mirror the placement in the 176-wide frame
            sources[i] += " (mirrored)"
        orient[i], pose[i], cams[i], feet[i] = o[0], p[0], cam, real.feet[j]
    return orient, pose, cams, feet, sources


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

    orient_np, pose_np, real_cam, real_feet, sources = _pick_poses(body, rng, k, real, opts.real_pose_fraction)
    if poses_override is not None:
        orient_np, pose_np = (np.asarray(a, np.float32).copy() for a in poses_override)
        real_cam[:], real_feet[:], sources = np.nan, np.nan, ["given"] * k
    orient, pose = torch.from_numpy(orient_np), torch.from_numpy(pose_np)
    rot, trans = body.joint_transforms(orient, pose, rest_j.expand(k, -1, -1))
    blend = torch.einsum("nj,kjxy->knxy", weights, rot)  # linear blend skinning, (K, N, 3, 3)
    verts = (blend @ rest[None, :, :, None])[..., 0] + torch.einsum("nj,kjx->knx", weights, trans)
    keypoints3d = body(orient, pose, shape.expand(k, -1), vertices=False).keypoints

    cams = frame_cameras(verts[:, :n_body], rng, height, width, real_cam, real_feet, stature, opts.closeup)
    cam_t = torch.from_numpy(cams)
    xy = verts[..., :2] * cam_t[:, None, :1] + cam_t[:, None, 1:]
    depth = verts[..., 2].contiguous()
    raster = rasterize(xy, depth, faces, height, width, face_parts)
    bodies = RenderedBody(xy, depth, raster)

    # ---- per covered pixel: texture channels, colour, class, light
    mask = raster.face_id >= 0  # (K, H, W)
    b_idx, r_idx, c_idx = torch.nonzero(mask, as_tuple=True)
    fid = raster.face_id[b_idx, r_idx, c_idx]
    bary = raster.bary[b_idx, r_idx, c_idx]  # (n, 3)
    corner = faces[fid]  # (n, 3)
    ch = (attrs[corner] * bary[..., None]).sum(1).numpy()
    part_px = raster.part[b_idx, r_idx, c_idx].numpy()
    px = (1.0 / cams[:, 0] * (1.7 / max(stature, 0.5)))[b_idx.numpy()].astype(np.float32)
    colour, cls = colour_pixels(look, tables, part_px, ch, px)
    if rest_normals is not None:
        # the normal at the pixel: blended skinning rotations applied to the rest normals
        n_rest = (rest_normals[corner] * bary[..., None]).sum(1)  # (n, 3)
        m = (blend[b_idx[:, None], corner] * bary[..., None, None]).sum(1)  # (n, 3, 3)
        nrm = torch.nn.functional.normalize((m @ n_rest[..., None])[..., 0], dim=-1).numpy()
        nrm = np.where(nrm[:, 2:3] > 0, -nrm, nrm)  # two-sided: the side facing the camera
        lam = np.maximum(nrm @ look.light, 0.0)
        rim = np.clip(1.0 + nrm[:, 2], 0.0, 1.0) ** 3 * 0.12  # grazing edges: a little darker
        shade = look.ambient + look.diffuse * lam - rim
        colour = colour * (shade[:, None] * look.tint[None, :])

    b_np, r_np, c_np = b_idx.numpy(), r_idx.numpy(), c_idx.numpy()
    part_map = raster.part.numpy().astype(np.uint8)
    images = np.empty((k, height, width, 3), np.uint8)
    parsing = np.zeros((k, height, width), np.uint8)
    parsing[b_np, r_np, c_np] = cls
    kp2d = keypoints3d[..., :2] * cam_t[:, None, :1] + cam_t[:, None, 1:]
    for i in range(k):
        sel = b_np == i
        feet = _feet(xy[i, :n_body].numpy(), part_map[i], height, width)
        canvas = _background(look, height, width, rng, feet)
        canvas[r_np[sel], c_np[sel]] = colour[sel]
        if opts.antialias:
            canvas = _smooth_edges(canvas, part_map[i])
        if opts.noise > 0:
            grain = np.frombuffer(rng.bytes(height * width), np.uint8).reshape(height, width)
            canvas += ((grain % (2 * opts.noise + 1)).astype(np.float32) - opts.noise)[..., None]
        images[i] = np.clip(canvas + 0.5, 0, 255).astype(np.uint8)
    keypoints = _visible_keypoints(kp2d.numpy(), keypoints3d[..., 2].numpy(), raster, height, width)
    yaws = [_yaw_of(orient_np[i]) for i in range(k)]
    return RenderedIdentity(look, images, parsing, keypoints, yaws, sources, bodies, faces, part_map, attrs)


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


def anny_pairs(k: int) -> list[tuple[int, int]]:
    """``(source, target)`` pose indices of an identity's pairs: each pose is the target of the next
    pose and of the one half-way round (``2 K`` pairs for ``K >= 3``), in target order."""
    out = []
    for j in range(k):
        for i in sorted({(j + 1) % k, (j + k // 2) % k} - {j}):
            out.append((i, j))
    return out


def identity_correspondence(ident: RenderedIdentity, pairs: list[tuple[int, int]], depth_tolerance: float = 0.03
                            ) -> BodyCorrespondence:
    """Flow target -> source and visibility of ``pairs`` ``(source, target)`` of one identity.

    :func:`~glocal_cli.body.correspond.correspond` on the pairs of each target together, with the
    target's maps cropped to its bounding box (the work grows with the target's pixels; outside the
    box every pixel is background), the flow shifted back to full-frame pixels.
    """
    b, r = ident.bodies, ident.bodies.raster
    k, height, width = r.face_id.shape
    flow = torch.zeros(len(pairs), height, width, 2)
    vis = torch.zeros(len(pairs), height, width, dtype=torch.uint8)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for t in sorted({t for _, t in pairs}):
            rows = [p for p, (_, tt) in enumerate(pairs) if tt == t]
            mask = r.face_id[t] >= 0
            if not bool(mask.any()):
                continue
            ys = torch.nonzero(mask.any(1))[:, 0]
            xs = torch.nonzero(mask.any(0))[:, 0]
            y0, y1, x0, x1 = int(ys[0]), int(ys[-1]) + 1, int(xs[0]), int(xs[-1]) + 1
            n = len(rows)
            tgt = RenderedBody(b.xy[t].expand(n, -1, -1), b.depth[t].expand(n, -1), Raster(
                r.face_id[t, y0:y1, x0:x1].expand(n, -1, -1), r.bary[t, y0:y1, x0:x1].expand(n, -1, -1, -1),
                r.depth[t, y0:y1, x0:x1].expand(n, -1, -1), r.part[t, y0:y1, x0:x1].expand(n, -1, -1)))
            src_idx = torch.tensor([pairs[p][0] for p in rows])
            src = RenderedBody(b.xy[src_idx], b.depth[src_idx],
                               Raster(r.face_id[src_idx], r.bary[src_idx], r.depth[src_idx], r.part[src_idx]))
            c = correspond(tgt, src, ident.faces, depth_tolerance=depth_tolerance)
            on = (c.visibility > 0)[..., None]
            shift = torch.tensor([float(x0), float(y0)])
            rows_t = torch.tensor(rows)
            flow[rows_t, y0:y1, x0:x1] = torch.where(on, c.flow - shift, 0.0)
            vis[rows_t, y0:y1, x0:x1] = c.visibility
    finally:
        torch.set_num_threads(threads)
    return BodyCorrespondence(flow, vis)


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
    pairs = anny_pairs(poses_per_identity)
    corr = identity_correspondence(ident, pairs, opts.depth_tolerance)
    for p, (s, t) in enumerate(pairs):
        maps = corr.maps(p)
        save_correspondence(correspondence_path(out, names[t], names[s]), maps.flow, maps.visibility)
    record = {"identity": index, "appearance": ident.look.describe(), "images": images,
              "pairs": [[names[s], names[t]] for s, t in pairs]}
    atomic_write_text(marker_path(out, index), json.dumps(record, separators=(",", ":")) + "\n")
    return record


def read_anny_marker(out: Path, index: int, poses_per_identity: int) -> dict[str, Any] | None:
    """The marker of a finished Anny identity, or ``None`` when it or one of its files is missing."""
    path = marker_path(out, index)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("identity") != index:
        return None
    images, pairs = record.get("images"), record.get("pairs")
    if not isinstance(images, list) or len(images) != poses_per_identity or not isinstance(pairs, list):
        return None
    for k, item in enumerate(images):
        name = image_name(index, k)
        if not isinstance(item, dict) or item.get("name") != name:
            return None
        stem = Path(name).stem
        if not (out / IMAGES_DIR / name).is_file() or not (out / PARSING_DIR / f"{stem}.png").is_file():
            return None
    for pair in pairs:
        if not (isinstance(pair, list) and len(pair) == 2 and correspondence_path(out, pair[1], pair[0]).is_file()):
            return None
    return record


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
