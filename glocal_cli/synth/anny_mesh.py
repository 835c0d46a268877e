"""The meshes of an Anny SynthPeople identity: the body with texture coordinates, plus clothes and hair
that do not follow the skin (a skirt or dress that hangs over both legs, a long-hair shell).

Everything that is drawn is a triangle mesh posed by the body's own linear blend skinning, so one
surface point is one mesh vertex blend in every image of the identity and
:func:`glocal_cli.body.correspond.correspond` gives the exact flow and visibility of every pixel,
garments included (no 2-D overlays, no special cases).

* :class:`BodyTables` (once per body model): per-vertex texture coordinates of the naked body in its
  mean (template) shape: the template position (metres), a *limb coordinate* ``L`` running along each
  arm and leg (0 at the shoulder or hip joint, 1 at the elbow or knee, 2 at the wrist or ankle, up to
  3 at the finger tips or toes) and the direction around the limb (cos, sin; 0 = the limb's front).
  They are attached to the mesh, so a stripe painted at ``L = 1.4`` stays on the forearm in every
  pose and every body shape.
* :func:`skirt_mesh` (per identity): rings from the waist to the hem around the identity's rest body,
  elliptic cross-sections that contain the hips and both legs and never narrow downwards, flared;
  skinned like the body at the waist and, lower down, to the pelvis and both hips (the hem swings
  with the average of the legs, like cloth, instead of splitting into two tubes).
* :func:`hair_mesh` (per identity): a shell around the back and sides of the head (the face stays
  free) from the crown down to the chin (bob) or the upper back (long), just outside the skin and
  never narrowing downwards, its lower edge wavy; skinned to the head at the top and to the upper
  spine at the bottom.

Garment vertices carry texture coordinates ``(tu, tv)`` in the same channels as the body's
(:data:`CHANNELS`): ``tu`` the arc length around (metres of the identity's rest body), ``tv`` the
fraction from top (0) to hem (1).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from glocal_cli.body.base import BODY_PARTS, BodyModel
from glocal_cli.data.keypoints import KEYPOINT_NAMES

__all__ = [
    "CHANNELS",
    "HAIR_PART",
    "NUM_MESH_PARTS",
    "SKIRT_PART",
    "BodyTables",
    "Garment",
    "body_tables",
    "hair_mesh",
    "skirt_mesh",
]

SKIRT_PART = len(BODY_PARTS)
"""Part id of skirt faces (after the body's :data:`~glocal_cli.body.base.BODY_PARTS`)."""
HAIR_PART = SKIRT_PART + 1
"""Part id of hair-shell faces."""
NUM_MESH_PARTS = HAIR_PART + 1
"""Part ids 0 (background) .. :data:`HAIR_PART`."""

CHANNELS: tuple[str, ...] = ("limb", "x", "y", "z", "around_cos", "around_sin")
"""Per-vertex texture channels. Body: limb coordinate ``L``, template position (metres, canonical
frame: x to the person's left... see :mod:`glocal_cli.body.base`), direction around the limb.
Garments: ``limb`` = ``tv`` (0 top, 1 hem), ``x`` = ``tu`` (arc length around, metres), others 0."""

_P = {name: i for i, name in enumerate(BODY_PARTS)}


@dataclass(frozen=True, eq=False)
class BodyTables:
    """The render mesh of a body model and its texture coordinates (see the module docstring).

    The render mesh is the shipped reduced triangle list (``data/anny_render_faces.npz``, made by
    ``scripts/make_synth_anny_data.py``: faces never seen from outside dropped, the head, hands and
    feet merged to ~1 cm) when it matches the body's topology, else the body's own faces. Only the
    vertices it uses are kept (*compact* indices; :attr:`vertex_ids` maps them to the body's).
    """

    vertex_ids: np.ndarray
    """``int64 (Vc,)`` body vertex index of each compact vertex."""
    faces: np.ndarray
    """``int64 (F, 3)`` compact vertex indices."""
    face_parts: np.ndarray
    """``int64 (F,)`` body part per face (:data:`~glocal_cli.body.base.BODY_PARTS`)."""
    attributes: np.ndarray
    """``float32 (Vc, len(CHANNELS))`` per-vertex texture channels."""
    skin: np.ndarray
    """``float32 (Vc, J)`` skinning weights of the compact vertices."""
    landmarks: dict[str, np.ndarray]
    """Template positions (metres): the 18 keypoints by name, ``head_centre``, ``head_top``, ``chin``."""
    joint_index: dict[str, int]
    """Joint name -> index of the body's rig."""
    vertex_parts: np.ndarray
    """``int64 (Vc,)`` a body part of each vertex (the part of one face that uses it)."""
    reduced: bool
    """Whether the shipped reduced mesh is used."""


RENDER_FACES_FILE = Path(__file__).resolve().parent / "data" / "anny_render_faces.npz"
"""The reduced render mesh of the shipped Anny body."""


def _render_faces(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The shipped reduced faces and parts when they were made from this topology."""
    import hashlib

    if not RENDER_FACES_FILE.is_file():
        return None
    with np.load(RENDER_FACES_FILE, allow_pickle=False) as d:
        digest = str(d["source_faces_sha256"])
        if digest != hashlib.sha256(faces.astype(np.int64).tobytes()).hexdigest()[:16]:
            return None
        return d["faces"].astype(np.int64), d["face_parts"].astype(np.int64)


def _segment_coords(points: np.ndarray, chain: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """For each point, ``L = i + t`` on the nearest segment ``i`` of ``chain`` and the unit direction
    from that segment's axis to the point (``(n, 3)``)."""
    best_d = np.full(len(points), np.inf)
    best_l = np.zeros(len(points))
    best_dir = np.zeros((len(points), 3))
    for i in range(len(chain) - 1):
        a, b = chain[i], chain[i + 1]
        ab = b - a
        t = np.clip(((points - a) @ ab) / float(ab @ ab), 0.0, 1.0)
        foot = a + t[:, None] * ab
        off = points - foot
        d = np.linalg.norm(off, axis=1)
        better = d < best_d
        best_d = np.where(better, d, best_d)
        best_l = np.where(better, i + t, best_l)
        axis = ab / np.linalg.norm(ab)
        radial = off - (off @ axis)[:, None] * axis
        best_dir = np.where(better[:, None], radial, best_dir)
    return best_l, best_dir


def _around(radial: np.ndarray, axis: np.ndarray) -> np.ndarray:
    """``(cos, sin)`` of the angle of ``radial`` around ``axis``; 0 = the camera side (-z), +90 degrees
    = the body's outside... measured with the right-hand rule about ``axis``."""
    front = np.array([0.0, 0.0, -1.0])
    front = front - (front @ axis) * axis
    front /= max(np.linalg.norm(front), 1e-9)
    side = np.cross(axis, front)
    r = radial / np.maximum(np.linalg.norm(radial, axis=1, keepdims=True), 1e-9)
    return np.stack([r @ front, r @ side], axis=1)


@functools.lru_cache(maxsize=4)
def _tables_cached(key: int, body: BodyModel) -> BodyTables:  # noqa: ARG001 - key keeps one entry per model
    faces = body.faces.cpu().numpy().astype(np.int64)
    parts = body.face_parts.cpu().numpy().astype(np.int64)
    with torch.no_grad():
        shape = body.default_shape(1)
        orient, pose = body.zero_pose(1)
        out = body(orient, pose, shape)
        verts = out.vertices[0].cpu().double().numpy()
        kp = out.keypoints[0].cpu().double().numpy()
        joints = body.rest(shape)[1][0].cpu().double().numpy()
    names = list(body.joint_names)
    jidx = {n: i for i, n in enumerate(names)}
    kpn = {n: kp[i] for i, n in enumerate(KEYPOINT_NAMES)}
    n_v = len(verts)
    limb = np.zeros(n_v)
    around = np.zeros((n_v, 2))
    around[:, 0] = 1.0
    for side, s in (("L", "l"), ("R", "r")):
        for kind, parts_, chain_joints, end_kp in (
            ("arm", ("upperarm", "lowerarm", "hand"), (f"shoulder_{s}", f"elbow_{s}"), f"{s}_wrist"),
            ("leg", ("upperleg", "lowerleg", "foot"), (f"hip_{s}", f"knee_{s}"), f"{s}_ankle"),
        ):
            ids = [_P[f"{p}.{side}"] for p in parts_]
            vid = np.unique(faces[np.isin(parts, ids)].reshape(-1))
            chain = [joints[jidx[j]] for j in chain_joints] + [kpn[end_kp]]
            end_part = np.unique(faces[parts == ids[-1]].reshape(-1))
            d_end = np.linalg.norm(verts[end_part] - chain[-1], axis=1)
            if kind == "leg":  # the toes: the foot's front-most point (smallest z)
                tip = verts[end_part[np.argmin(verts[end_part, 2])]]
            else:
                tip = verts[end_part[np.argmax(d_end)]]
            chain.append(tip)
            lc, radial = _segment_coords(verts[vid], chain)
            limb[vid] = lc
            axis_seg = np.clip(np.floor(lc).astype(int), 0, len(chain) - 2)
            cs = np.zeros((len(vid), 2))
            for i in range(len(chain) - 1):
                m = axis_seg == i
                if m.any():
                    ax = chain[i + 1] - chain[i]
                    cs[m] = _around(radial[m], ax / np.linalg.norm(ax))
            around[vid] = cs
    attributes = np.concatenate([limb[:, None], verts, around], axis=1).astype(np.float32)
    head_v = verts[np.unique(faces[parts == _P["head"]].reshape(-1))]
    landmarks = {n: kpn[n].astype(np.float32) for n in KEYPOINT_NAMES}
    landmarks["head_centre"] = joints[jidx["head"]].astype(np.float32)
    landmarks["head_top"] = np.array([0.0, head_v[:, 1].min(), 0.0], np.float32)
    front = head_v[np.abs(head_v[:, 0]) < 0.01]
    chin_zone = front[(front[:, 2] < -0.1)]
    landmarks["chin"] = chin_zone[np.argmax(chin_zone[:, 1])].astype(np.float32)
    reduced = _render_faces(faces)
    r_faces, r_parts = reduced if reduced is not None else (faces, parts)
    vertex_ids, compact = np.unique(r_faces.reshape(-1), return_inverse=True)
    c_faces = compact.reshape(-1, 3).astype(np.int64)
    vertex_parts = np.zeros(len(vertex_ids), np.int64)
    vertex_parts[c_faces.reshape(-1)] = np.repeat(r_parts, 3)
    skin = body.skin_weights.cpu().float().numpy()[vertex_ids]
    return BodyTables(vertex_ids=vertex_ids, faces=c_faces, face_parts=r_parts, attributes=attributes[vertex_ids],
                      skin=skin, landmarks=landmarks, joint_index=jidx, vertex_parts=vertex_parts,
                      reduced=reduced is not None)


def body_tables(body: BodyModel) -> BodyTables:
    """The :class:`BodyTables` of ``body`` (computed once per model object and cached)."""
    return _tables_cached(id(body), body)


@dataclass(frozen=True, eq=False)
class Garment:
    """A mesh posed with the body's skinning: rest vertices of the identity, weights, faces, coordinates."""

    vertices: np.ndarray
    """``float32 (G, 3)`` rest positions (the identity's rest frame, metres)."""
    weights: np.ndarray
    """``float32 (G, J)`` skinning weights over the body's joints (rows sum to 1)."""
    faces: np.ndarray
    """``int64 (Fg, 3)`` indices into :attr:`vertices`, wound so that the outside faces the viewer."""
    attributes: np.ndarray
    """``float32 (G, len(CHANNELS))`` texture channels (``limb`` = tv, ``x`` = tu)."""
    part: int
    """:data:`SKIRT_PART` or :data:`HAIR_PART`."""


def _grid_faces(rows: int, cols: int, outward: bool) -> np.ndarray:
    """Two triangles per cell of a ``rows x cols`` vertex grid (row-major)."""
    r, c = np.meshgrid(np.arange(rows - 1), np.arange(cols - 1), indexing="ij")
    a = (r * cols + c).reshape(-1)
    b, d, e = a + 1, a + cols, a + cols + 1
    if outward:
        tri = np.concatenate([np.stack([a, d, b], 1), np.stack([b, d, e], 1)])
    else:
        tri = np.concatenate([np.stack([a, b, d], 1), np.stack([b, e, d], 1)])
    return tri.astype(np.int64)


def _nearest_weights(points: np.ndarray, rest: np.ndarray, weights: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Skin weights of the nearest candidate body vertex for each point."""
    from scipy.spatial import cKDTree

    _, nearest = cKDTree(rest[candidates]).query(points)
    return weights[candidates[nearest]]


def _smoothstep(x: np.ndarray | float) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def skirt_mesh(
    rest: np.ndarray,
    joints: np.ndarray,
    skin: np.ndarray,
    tables: BodyTables,
    length: float,
    flare: float,
    waist: float = 0.55,
    rings: int = 10,
    around: int = 40,
) -> Garment:
    """A skirt from the waist to the hem (see the module docstring).

    ``rest (V, 3)`` and ``joints (J, 3)``: the identity's rest body; ``skin (V, J)`` the body's skinning
    weights. ``length``: the hem on the leg's limb coordinate (0.5 mid-thigh, 1 the knee, 1.8 near the
    ankle); ``flare``: extra half-width at the hem per metre of skirt length; ``waist``: the waist line
    between the pelvis (0) and the mid spine (1).
    """
    j = tables.joint_index
    parts = tables.face_parts
    pelvis, spine = joints[j["pelvis"]], joints[j["spine_mid"]]
    y_waist = pelvis[1] + waist * (spine[1] - pelvis[1])
    hip = 0.5 * (joints[j["hip_l"]] + joints[j["hip_r"]])
    knee = 0.5 * (joints[j["knee_l"]] + joints[j["knee_r"]])
    ankle_y = float(rest[:, 1].max()) - 0.07 * float(rest[:, 1].max() - rest[:, 1].min()) / 1.6
    if length <= 1.0:
        y_hem = hip[1] + length * (knee[1] - hip[1])
    else:
        y_hem = knee[1] + (length - 1.0) * (ankle_y - knee[1])
    ids = [_P[n] for n in ("torso", "upperleg.L", "upperleg.R", "lowerleg.L", "lowerleg.R")]
    cand = np.unique(tables.faces[np.isin(parts, ids)].reshape(-1))
    pts = rest[cand]
    tv = np.linspace(0.0, 1.0, rings)
    ys = y_waist + tv * (y_hem - y_waist)
    spacing = max(float(ys[1] - ys[0]), 0.01) if rings > 1 else 0.02
    cx, cz = 0.0, float(pelvis[2])
    semi = np.zeros((rings, 2))
    for i, y in enumerate(ys):
        m = np.abs(pts[:, 1] - y) <= (0.01 if i == 0 else 0.6 * spacing)
        if not m.any():
            semi[i] = semi[i - 1] if i else (0.12, 0.1)
            continue
        dx, dz = np.abs(pts[m, 0] - cx), np.abs(pts[m, 2] - cz)
        a, c = max(float(dx.max()), 0.05), max(float(dz.max()), 0.05)
        k = float(np.sqrt((dx / a) ** 2 + (dz / c) ** 2).max())  # scale so the ellipse holds every point
        semi[i] = (a * k, c * k)
    semi += 0.007
    semi = np.maximum.accumulate(semi, axis=0)  # cloth hangs: never narrower further down
    drop = ys - y_waist
    semi = semi + (flare * drop)[:, None] * np.array([1.0, 0.8])
    phi = np.linspace(-math.pi, math.pi, around + 1)  # seam at the back centre, duplicated
    sx, sz = np.sin(phi), -np.cos(phi)  # phi = 0: the front (-z)
    verts = np.zeros((rings, around + 1, 3))
    verts[..., 0] = cx + semi[:, None, 0] * sx[None]
    verts[..., 1] = ys[:, None]
    verts[..., 2] = cz + semi[:, None, 1] * sz[None]
    verts = verts.reshape(-1, 3)
    # skinning: the body's weights at the waist, lower down the pelvis and both hips by side
    near = _nearest_weights(verts, rest, skin, cand[pts[:, 1] < hip[1] + 0.05])
    n_j = skin.shape[1]
    drape = np.zeros((rings, around + 1, n_j))
    t_leg = np.clip((ys - hip[1]) / max(float(knee[1] - hip[1]), 1e-3), 0.0, 1.0)[:, None]
    side = np.clip(sx, -1.0, 1.0)[None, :]
    wl = 0.8 * t_leg * 0.5 * (1.0 + side)
    wr = 0.8 * t_leg * 0.5 * (1.0 - side)
    drape[..., j["hip_l"]] = wl
    drape[..., j["hip_r"]] = wr
    drape[..., j["pelvis"]] = 1.0 - wl - wr
    alpha = _smoothstep(tv / 0.35)[:, None, None]
    weights = ((1.0 - alpha) * near.reshape(rings, around + 1, n_j) + alpha * drape).reshape(-1, n_j)
    weights /= weights.sum(1, keepdims=True)
    circumference = math.pi * float(semi[0].sum())
    attrs = np.zeros((rings, around + 1, len(CHANNELS)), np.float32)
    attrs[..., 0] = tv[:, None]
    attrs[..., 1] = (phi / (2 * math.pi) * circumference)[None, :]
    return Garment(verts.astype(np.float32), weights.astype(np.float32),
                   _grid_faces(rings, around + 1, outward=True), attrs.reshape(-1, len(CHANNELS)), SKIRT_PART)


def hair_mesh(
    rest: np.ndarray,
    joints: np.ndarray,
    skin: np.ndarray,
    tables: BodyTables,
    end: float,
    thickness: float,
    sweep: float,
    wave_phase: float,
    rings: int = 14,
    around: int = 28,
) -> Garment:
    """A hair shell around the back and sides of the head (see the module docstring).

    ``end``: where the hair ends between the chin (0) and the mid spine (1); ``thickness`` (metres)
    outside the skin; ``sweep``: half the angle it covers around the head from the back centre
    (radians; ~1.9 frames the face); ``wave_phase`` shifts the wavy lower edge.
    """
    j = tables.joint_index
    parts = tables.face_parts
    head = joints[j["head"]]
    top = float(rest[np.unique(tables.faces[parts == _P["head"]].reshape(-1)), 1].min())
    spine = joints[j["spine_mid"]]
    head_h = float(head[1] - top)
    y_chin = float(head[1] + 0.55 * head_h)
    y_end = y_chin + end * (float(spine[1]) - y_chin)
    phi = np.linspace(-sweep, sweep, around)  # 0: the back centre (+z)
    wave = 0.035 * head_h / 0.15 * (np.sin(3.0 * phi + wave_phase) + 0.5 * np.sin(7.0 * phi + 2.0 * wave_phase))
    edge = y_end + wave * (0.3 + end)
    tv = np.linspace(0.0, 1.0, rings)
    y0 = top + 0.05 * head_h
    ys = y0 + tv[:, None] * (edge[None, :] - y0)  # (rings, around)
    cx, cz = float(head[0]), float(head[2])
    ids = [_P["head"], _P["torso"]]
    cand = np.unique(tables.faces[np.isin(parts, ids)].reshape(-1))
    pts = rest[cand]
    rel_x, rel_z = pts[:, 0] - cx, pts[:, 2] - cz
    ang = np.arctan2(rel_x, rel_z)  # 0 at the back
    rad = np.hypot(rel_x, rel_z)
    # the head, and the torso wherever the hair hangs over it (the back, and the shoulders at its sides)
    keep = (tables.vertex_parts[cand] == _P["head"]) | (np.abs(ang) < sweep - 0.35) | (np.abs(rel_x) < 0.07)
    ang, rad, py = ang[keep], rad[keep], pts[keep, 1]
    bin_w = 2.0 * sweep / max(around - 1, 1)
    nxt = np.vstack([ys[1:], ys[-1:]])
    prv = np.vstack([ys[:1], ys[:-1]])
    slab = np.maximum(np.abs(nxt - prv) * 0.6, 0.01)  # (rings, around)
    radius = np.zeros((rings, around))
    for c in range(around):
        in_bin = np.abs(np.angle(np.exp(1j * (ang - phi[c])))) <= max(bin_w, 0.2)
        r_sub, y_sub = rad[in_bin], py[in_bin]
        near = np.abs(y_sub[None, :] - ys[:, c, None]) <= slab[:, c, None]  # (rings, n)
        radius[:, c] = np.where(near, r_sub[None, :], 0.0).max(1, initial=0.0)
    radius[radius == 0] = 0.02
    # hair falls: never tucks in; a little more room lower down, where the shoulder blades move
    radius = np.maximum.accumulate(radius + thickness + 0.012 * tv[:, None], axis=0)
    # no sudden bulges across the sweep: a little smoothing around
    radius = 0.5 * radius + 0.25 * (np.roll(radius, 1, 1) + np.roll(radius, -1, 1))
    verts = np.zeros((rings, around, 3))
    verts[..., 0] = cx + radius * np.sin(phi)[None]
    verts[..., 1] = ys
    verts[..., 2] = cz + radius * np.cos(phi)[None]
    verts = verts.reshape(-1, 3)
    n_j = skin.shape[1]
    w = np.zeros((rings * around, n_j))
    # the head carries the hair down to the chin, the upper back from just below the neck (a short
    # blend: a long one would swing the hair through the shoulders when the head turns)
    y_back = y_chin + 0.6 * (float(joints[j["spine_top"], 1]) - y_chin)
    follow_head = 1.0 - _smoothstep((verts[:, 1] - y_chin) / max(y_back - y_chin, 1e-3))
    w[:, j["head"]] = follow_head
    w[:, j["spine_top"]] = 1.0 - follow_head
    attrs = np.zeros((rings, around, len(CHANNELS)), np.float32)
    attrs[..., 0] = tv[:, None]
    attrs[..., 1] = (phi * 0.09)[None, :]
    return Garment(verts.astype(np.float32), w.astype(np.float32), _grid_faces(rings, around, outward=False),
                   attrs.reshape(-1, len(CHANNELS)), HAIR_PART)
