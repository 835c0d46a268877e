"""The SynthPeople renderer: one articulated 2-D person from 18 keypoints, with exact ground truth.

:func:`render_person` builds the part frames from a :class:`~glocal_cli.synth.poses.SampledPose`
(see ``geometry`` for the primitive), orders the parts by a per-image depth that depends on the
pose and the view (arms in front of or behind the torso, the far arm behind it in a side view,
crossed legs in either order, long hair behind the head in front and over the back in a back view),
and paints them back to front with anti-aliased edges. Every drawn pixel also records its part and
surface coordinates, from which parsing, visible keypoints and dense correspondence follow exactly.
Pure numpy on the CPU; each part is rasterised in its bounding box only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from glocal_cli.data.geometry import (
    ATTACHED_PARTS,
    NUM_PARTS,
    PART_IDS,
    PROFILE_CAPSULE,
    PROFILE_ELLIPSE,
    PROFILE_TRAPEZOID,
    pixel_to_surface,
    surface_to_pixel,
)
from glocal_cli.data.keypoints import KEYPOINT_NAMES, Pose
from glocal_cli.synth.appearance import Appearance, colour_part
from glocal_cli.synth.poses import K, SampledPose, view_of

__all__ = ["RenderOptions", "RenderedPerson", "build_frames", "render_person"]

P = PART_IDS
TWO_PI = np.float32(2.0 * math.pi)

# (forward, lateral, bias) of each part for the depth order: nearness to the camera is
# forward * cos(yaw) + lateral * sin(yaw) + bias (lateral: person's left positive).
_DEPTH = {
    "head": (0.15, 0.0, 0.2),
    "neck": (0.0, 0.0, -0.3),
    "torso": (0.0, 0.0, 0.0),
    "r_upper_arm": (0.05, -1.0, 0.0),
    "r_lower_arm": (0.1, -1.0, 0.005),
    "r_hand": (0.1, -1.0, 0.01),
    "l_upper_arm": (0.05, 1.0, 0.0),
    "l_lower_arm": (0.1, 1.0, 0.005),
    "l_hand": (0.1, 1.0, 0.01),
    "r_upper_leg": (0.02, -0.5, 0.0),
    "r_lower_leg": (0.03, -0.5, 0.002),
    "r_foot": (0.1, -0.5, 0.004),
    "l_upper_leg": (0.02, 0.5, 0.0),
    "l_lower_leg": (0.03, 0.5, 0.002),
    "l_foot": (0.1, 0.5, 0.004),
    "hair": (-0.5, 0.0, -0.05),
    "skirt": (0.0, 0.0, 0.0),
}

# Face keypoints as surface points of the head: (u, theta, minimum cos(theta - yaw) to be seen).
_FACE_POINTS = {
    "nose": (0.64, 0.0, -0.2),
    "r_eye": (0.5, -0.33, 0.2),
    "l_eye": (0.5, 0.33, 0.2),
    "r_ear": (0.52, -math.pi / 2, -0.3),
    "l_ear": (0.52, math.pi / 2, -0.3),
}


@dataclass(frozen=True)
class RenderOptions:
    """Switches of the renderer (the defaults make the dataset; tests turn effects off)."""

    shading: bool = True
    """Darken each part towards its silhouette (view-dependent, like soft studio light)."""
    noise: int = 3
    """Background noise amplitude in grey levels (uniform in ``-noise .. noise``); 0 for none."""
    shading_strength: float = 0.3
    """Brightness lost at the silhouette of a part (0..1)."""


@dataclass(frozen=True)
class RenderedPerson:
    """One rendered image and its ground truth.

    ``image`` ``uint8 (H, W, 3)`` RGB; ``parsing`` ``uint8 (H, W)`` canonical classes; ``part``
    ``uint8 (H, W)`` part ids (0 background); ``u`` and ``v`` ``float32 (H, W)`` surface
    coordinates (``v = theta / 2 pi`` in ``[0, 1)``, 0 on the background); ``keypoints`` the 18
    points as drawn (occluded or out-of-frame points missing); ``frames``/``yaw`` the geometry
    (see ``geometry``); ``order`` the part ids back to front; ``view`` front/side/back.
    """

    image: np.ndarray
    parsing: np.ndarray
    part: np.ndarray
    u: np.ndarray
    v: np.ndarray
    keypoints: Pose
    frames: np.ndarray
    yaw: float
    order: tuple[int, ...]
    view: str
    pose_source: str = ""
    """Where the pose came from: the annotation row's image name, ``parametric`` or ``template``."""


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.hypot(v[0], v[1]))
    return v / n if n > 1e-6 else np.array([0.0, 1.0])


def _row(a: np.ndarray, b: np.ndarray, wa: float, wb: float, profile: int) -> list[float]:
    return [float(a[0]), float(a[1]), float(b[0]), float(b[1]), float(wa), float(wb), float(profile), 1.0]


def build_frames(pose: SampledPose, app: Appearance) -> tuple[np.ndarray, float]:
    """Part frames ``float32 (NUM_PARTS, 8)`` and the torso length in pixels for a pose."""
    xy = pose.xy
    yaw = pose.yaw
    cy, sy = math.cos(yaw), math.sin(yaw)
    neck = xy[K["neck"]]
    hip_r, hip_l = xy[K["r_hip"]], xy[K["l_hip"]]
    hip_mid = (hip_r + hip_l) / 2
    sh_r, sh_l = xy[K["r_shoulder"]], xy[K["l_shoulder"]]
    sh_mid = (sh_r + sh_l) / 2
    length = max(float(np.linalg.norm(hip_mid - neck)), float(np.linalg.norm(sh_l - sh_r)) / 0.75, 4.0)
    t = length
    b = app.build
    down = _unit(hip_mid - sh_mid)
    normal = np.array([down[1], -down[0]])
    frames = np.zeros((NUM_PARTS, 8), np.float32)

    def across(a: float, depth: float) -> float:
        return math.sqrt((a * cy) ** 2 + (depth * sy) ** 2) * t

    # Torso: trapezoid from just above the shoulders to just below the hips.
    w_sh = max(0.5 * abs(float(np.dot(sh_l - sh_r, normal))) + 0.05 * t, across(0.36, 0.2)) * b
    w_hip = max(0.5 * abs(float(np.dot(hip_l - hip_r, normal))) + 0.09 * t, across(0.29, 0.2)) * b
    frames[P["torso"]] = _row(sh_mid - 0.05 * t * down, hip_mid + 0.06 * t * down, w_sh, w_hip, PROFILE_TRAPEZOID)

    # Head: an ellipse centred between the ears at eye level, tilted along neck -> head.
    ears = (xy[K["r_ear"]] + xy[K["l_ear"]]) / 2
    eyes = (xy[K["r_eye"]] + xy[K["l_eye"]]) / 2
    centre = np.array([ears[0], (ears[1] + eyes[1]) / 2])
    up = _unit(centre - neck) if np.linalg.norm(centre - neck) > 0.1 * t else -down
    ry = 0.27 * t * app.head_scale
    rx = 0.19 * t * app.head_scale
    frames[P["head"]] = _row(centre + ry * up, centre - ry * up, rx, rx, PROFILE_ELLIPSE)
    chin = centre - 0.75 * ry * up
    frames[P["neck"]] = _row(neck + 0.08 * t * down, chin, 0.085 * t * b, 0.08 * t * b, PROFILE_CAPSULE)

    sleeve_extra = 0.006 if app.sleeve == "long" else 0.0
    pants_extra = 0.012 if app.lower_kind == "pants" else 0.0
    for side in ("r_", "l_"):
        sh, el, wr = xy[K[side + "shoulder"]], xy[K[side + "elbow"]], xy[K[side + "wrist"]]
        frames[P[side + "upper_arm"]] = _row(
            sh, el, (0.075 + sleeve_extra) * t * b, (0.06 + sleeve_extra) * t * b, PROFILE_CAPSULE
        )
        frames[P[side + "lower_arm"]] = _row(el, wr, 0.058 * t * b, 0.042 * t * b, PROFILE_CAPSULE)
        hand_dir = _unit(wr - el)
        frames[P[side + "hand"]] = _row(wr, wr + 0.14 * t * hand_dir, 0.045 * t, 0.036 * t, PROFILE_CAPSULE)
        hp, kn, an = xy[K[side + "hip"]], xy[K[side + "knee"]], xy[K[side + "ankle"]]
        frames[P[side + "upper_leg"]] = _row(
            hp, kn, (0.11 + pants_extra) * t * b, (0.075 + pants_extra) * t * b, PROFILE_CAPSULE
        )
        frames[P[side + "lower_leg"]] = _row(
            kn, an, (0.072 + pants_extra) * t * b, (0.048 + pants_extra) * t * b, PROFILE_CAPSULE
        )
        foot = np.array([-sy * 0.17 * t, (0.05 + 0.05 * abs(cy)) * t])
        frames[P[side + "foot"]] = _row(an, an + foot, 0.045 * t, 0.04 * t, PROFILE_CAPSULE)

    if app.hair_style == "long":
        back = np.array([sy, 0.0]) * 0.06 * t
        top = centre + back
        frames[P["hair"]] = _row(top, top - up * app.hair_length * t, rx * 1.02, rx * 1.1, PROFILE_TRAPEZOID)
    if app.lower_kind == "skirt":
        knee_mid = (xy[K["r_knee"]] + xy[K["l_knee"]]) / 2
        leg = knee_mid - hip_mid
        bottom = hip_mid + leg * app.skirt_length
        spread = 0.5 * abs(float(np.dot(xy[K["l_knee"]] - xy[K["r_knee"]], normal))) * app.skirt_length
        w_bottom = max(w_hip * app.skirt_flare, spread + 0.1 * t)
        frames[P["skirt"]] = _row(hip_mid - 0.12 * t * down, bottom, w_hip * 1.03, w_bottom, PROFILE_TRAPEZOID)
    return frames, t


def _draw_order(frames: np.ndarray, pose: SampledPose, rng: np.random.Generator) -> list[int]:
    cy, sy = math.cos(pose.yaw), math.sin(pose.yaw)
    near: dict[int, float] = {}
    leg_jitter = rng.uniform(-0.02, 0.02, 2)
    for name, (fwd, lat, bias) in _DEPTH.items():
        pid = P[name]
        if frames[pid, 7] < 0.5:
            continue
        if name.endswith(("lower_arm", "hand")):
            behind = pose.behind[0 if name.startswith("r_") else 1]
            fwd = -0.25 if behind else fwd
        if name.endswith(("leg", "foot")):
            bias += float(leg_jitter[0 if name.startswith("r_") else 1])
        near[pid] = fwd * cy + lat * sy + bias
    if P["skirt"] in near:
        legs = [near[P[n]] for n in ("r_upper_leg", "l_upper_leg", "r_lower_leg", "l_lower_leg")]
        near[P["skirt"]] = max(legs) + 0.01
    return sorted(near, key=lambda pid: (near[pid], pid))


_NOISE_LEVELS = np.arange(256, dtype=np.int64)


def _background(app: Appearance, height: int, width: int, noise: int, rng: np.random.Generator) -> np.ndarray:
    """Light studio background ``float32 (3, H, W)`` (channel-planar): the identity's colour,
    slightly darker towards the floor, with mild grey noise uniform in ``-noise .. noise``."""
    ramp = np.linspace(1.0, 0.94, height, dtype=np.float32)[None, :, None]
    base = app.background.astype(np.float32)[:, None, None] * ramp  # (3, H, 1)
    if noise > 0:
        lut = (_NOISE_LEVELS % (2 * noise + 1) - noise).astype(np.float32)
        grain = lut.take(np.frombuffer(rng.bytes(height * width), np.uint8)).reshape(1, height, width)
        canvas = base + grain
    else:
        canvas = np.repeat(base, width, axis=2)
    return canvas


def render_person(
    pose: SampledPose,
    app: Appearance,
    height: int,
    width: int,
    rng: np.random.Generator,
    options: RenderOptions | None = None,
) -> RenderedPerson:
    """Render one person; all randomness (depth jitter, background noise) comes from ``rng``."""
    opts = options or RenderOptions()
    frames, torso_len = build_frames(pose, app)
    order = _draw_order(frames, pose, rng)
    n = height * width
    canvas = _background(app, height, width, opts.noise, rng).reshape(3, n)
    part = np.zeros(n, np.uint8)
    u_map = np.zeros(n, np.float32)
    th_map = np.zeros(n, np.float32)
    cls_map = np.zeros(n, np.uint8)
    yaw32 = np.float32(pose.yaw)
    px = 1.0 / torso_len
    strength = np.float32(opts.shading_strength)
    for pid in order:
        samples = pixel_to_surface(frames[pid], height, width)
        if samples is None:
            continue
        sd_box = samples.sd.reshape(-1)
        local = np.flatnonzero(sd_box > -0.5)
        if local.size == 0:
            continue
        rows = local // samples.bw
        idx = (rows + samples.y0) * width + (local - rows * samples.bw + samples.x0)
        u = samples.u.reshape(-1).take(local)
        s = samples.s_at(local)
        alpha = np.minimum(sd_box.take(local) + np.float32(0.5), np.float32(1.0))
        theta = yaw32 + np.arcsin(s)
        colour, cls = colour_part(app, pid, u, s, theta, px)
        if opts.shading:
            colour = colour * (np.float32(1.0) - strength + strength * np.sqrt(np.float32(1.0) - s * s))[None, :]
        under = canvas.take(idx, axis=1)
        under += (colour - under) * alpha[None, :]
        canvas[:, idx] = under
        hard = alpha >= 0.5
        if not hard.all():
            idx, u, theta, cls = idx[hard], u[hard], theta[hard], cls[hard]
        part[idx] = pid
        u_map[idx] = u
        th_map[idx] = theta
        cls_map[idx] = cls
    # Round to the nearest grey level (every value is >= 0) and saturate at 255.
    image = cv2.convertScaleAbs(cv2.merge([c.reshape(height, width) for c in canvas]))
    part2 = part.reshape(height, width)
    v_map = np.mod(th_map * np.float32(1.0 / TWO_PI), np.float32(1.0)).reshape(height, width)
    u_map = u_map.reshape(height, width)
    cls_map = cls_map.reshape(height, width)
    keypoints = _visible_keypoints(pose, frames, part2, height, width)
    return RenderedPerson(
        image=image,
        parsing=cls_map,
        part=part2,
        u=u_map,
        v=v_map,
        keypoints=keypoints,
        frames=frames,
        yaw=float(pose.yaw),
        order=tuple(order),
        view=view_of(pose.yaw),
        pose_source=pose.source,
    )


def _visible_keypoints(pose: SampledPose, frames: np.ndarray, part: np.ndarray, height: int, width: int) -> Pose:
    """The 18 keypoints as drawn: face points from the head model, body points from the pose;
    a point is visible when it is in the frame and lies on one of its own parts."""
    xy = pose.xy.astype(np.float32).copy()
    yaw = pose.yaw
    min_cos = np.full(18, -2.0)
    names = list(_FACE_POINTS)
    u = np.array([_FACE_POINTS[n][0] for n in names], np.float32)
    theta = np.array([_FACE_POINTS[n][1] for n in names], np.float32)
    s = np.clip(np.sin(theta - np.float32(yaw)), -0.93, 0.93)
    x, y, _ = surface_to_pixel(frames, yaw, np.full(len(names), P["head"]), u, np.float32(yaw) + np.arcsin(s))
    for j, name in enumerate(names):
        xy[K[name]] = (x[j], y[j])
        min_cos[K[name]] = _FACE_POINTS[name][2]
    facing = np.array([math.cos(_FACE_POINTS[n][1] - yaw) if n in _FACE_POINTS else 1.0 for n in KEYPOINT_NAMES])
    profile = abs(math.sin(yaw)) > 0.8
    far = "l_" if math.sin(yaw) < 0 else "r_"
    visible = np.zeros(18, bool)
    for i, name in enumerate(KEYPOINT_NAMES):
        if facing[i] <= min_cos[i]:
            continue
        c, r = int(round(float(xy[i, 0]))), int(round(float(xy[i, 1])))
        if not (0 <= c < width and 0 <= r < height):
            continue
        allowed = ATTACHED_PARTS[name]
        if profile and name.startswith(far) and name.endswith(("shoulder", "hip")):
            allowed = tuple(a for a in allowed if a != "torso")
        visible[i] = int(part[r, c]) in {P[a] for a in allowed if frames[P[a], 7] > 0.5}
    return Pose(xy, visible)
