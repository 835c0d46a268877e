"""Body poses for Anny SynthPeople: a sampler of standing and walking poses, and real poses fitted to
the community's DeepFashion keypoint annotation.

**Sampler** (:func:`sample_poses`): the body turned to any yaw (front, side and back views), a
slight lean, spine and neck turns within the body's joint limits; arms from target directions
(hanging, swinging, akimbo, raised to the face, crossed in front, behind the back) converted to the
rig's local axis-angles through the forward kinematics, then bent at the elbow towards the front
or the body; legs standing, weight-shifted, crossed or in a walking stride (hip flexion, abduction
and knee bend drawn inside ``joint_limits``).

**Real poses** (:class:`RealPoses`): ``fit_keypoints`` run once on the rows of
``fasion-annotation-test.csv`` (``scripts/make_synth_anny_data.py``) and shipped as
``glocal_cli/synth/data/anny_poses.npz`` (global orientation, body pose, camera, the annotated
keypoints and which were seen, 256x176 frame). Limbs the annotation does not show (legs below a
close-up crop, a hand out of the picture) take the sampler's rotations (:func:`merge_real_pose`);
a real pose is mirrored with probability 0.5 (left and right joints swapped, rotations reflected).

**Framing** (:func:`frame_cameras`): weak-perspective cameras. Sampled poses stand full length on a
floor line (px per metre fixed per image, so children come out smaller than adults) or are cropped
closer; real poses take the photo's framing (the body's keypoints fitted onto the annotated ones).
"""

from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from glocal_cli.body.base import BodyModel
from glocal_cli.data.keypoints import FLIP_PERMUTATION, KEYPOINT_NAMES

__all__ = [
    "REAL_POSES_FILE",
    "RealPoses",
    "frame_cameras",
    "merge_real_pose",
    "mirror_keypoints",
    "mirror_pose",
    "sample_poses",
]

REAL_POSES_FILE = Path(__file__).resolve().parent / "data" / "anny_poses.npz"
"""The shipped fits of the DeepFashion test annotation (made by ``scripts/fit_synth_poses.py``)."""

_MIRROR_SWAP = (("clavicle_l", "clavicle_r"), ("shoulder_l", "shoulder_r"), ("elbow_l", "elbow_r"),
                ("hip_l", "hip_r"), ("knee_l", "knee_r"))


def _rodrigues(v: np.ndarray) -> np.ndarray:
    theta = float(np.linalg.norm(v))
    if theta < 1e-9:
        return np.eye(3)
    k = v / theta
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + math.sin(theta) * kx + (1 - math.cos(theta)) * kx @ kx


def _log(r: np.ndarray) -> np.ndarray:
    """Axis-angle of a rotation matrix."""
    c = np.clip((np.trace(r) - 1) / 2, -1.0, 1.0)
    theta = math.acos(c)
    if theta < 1e-7:
        return np.zeros(3)
    if math.pi - theta < 1e-4:  # near pi: from the symmetric part
        m = (r + np.eye(3)) / 2
        axis = np.sqrt(np.maximum(np.diag(m), 0))
        i = int(np.argmax(axis))
        axis = m[i] / max(math.sqrt(m[i, i]), 1e-9)
        return axis / np.linalg.norm(axis) * theta
    w = np.array([r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1]]) / (2 * math.sin(theta))
    return w * theta


def _align(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest rotation taking unit vector ``a`` to unit vector ``b``."""
    a = a / np.linalg.norm(a)
    b = b / np.linalg.norm(b)
    axis = np.cross(a, b)
    s = float(np.linalg.norm(axis))
    c = float(np.clip(a @ b, -1.0, 1.0))
    if s < 1e-9:
        if c > 0:
            return np.eye(3)
        perp = np.cross(a, [1.0, 0.0, 0.0] if abs(a[0]) < 0.9 else [0.0, 1.0, 0.0])
        return _rodrigues(perp / np.linalg.norm(perp) * math.pi)
    return _rodrigues(axis / s * math.atan2(s, c))


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-9)


@dataclass(frozen=True)
class _Rig:
    names: tuple[str, ...]
    parents: tuple[int, ...]
    joints: np.ndarray  # (J, 3) rest joint centres (template)
    wrist: dict[str, np.ndarray]  # rest wrist keypoints
    limits: np.ndarray  # (P, 3, 2)


@functools.lru_cache(maxsize=4)
def _rig(body: BodyModel) -> _Rig:
    """The body's rest joints, wrists and limits (cached per model object)."""
    with torch.no_grad():
        shape = body.default_shape(1)
        joints = body.rest(shape)[1][0].double().cpu().numpy()
        orient, pose = body.zero_pose(1)
        kp = body(orient, pose, shape, vertices=False).keypoints[0].double().cpu().numpy()
    return _Rig(tuple(body.joint_names), tuple(int(p) for p in body.parents), joints,
                {"l": kp[7], "r": kp[4]}, body.joint_limits.cpu().double().numpy())


def _world_rotations(rig: _Rig, local: np.ndarray) -> list[np.ndarray]:
    """Global rotation of every joint from local axis-angles ``local (J, 3)`` (root first)."""
    out: list[np.ndarray] = []
    for j, p in enumerate(rig.parents):
        r = _rodrigues(local[j])
        out.append(r if p < 0 else out[p] @ r)
    return out


def _direction_rotation(rig: _Rig, parent_rot: np.ndarray, joint: str, child_rest: np.ndarray, target: np.ndarray,
                        twist: float = 0.0) -> np.ndarray:
    """The local axis-angle of ``joint`` (whose parent's world rotation is ``parent_rot``) that points
    its bone (rest direction joint -> ``child_rest``) along world direction ``target``, then twists it."""
    j = rig.names.index(joint)
    d0 = _unit(child_rest - rig.joints[j])
    want = parent_rot.T @ _unit(target)
    return _log(_align(d0, want) @ _rodrigues(d0 * twist))


def _clamp_limits(rig: _Rig, local: np.ndarray) -> None:
    lim = rig.limits
    local[1:] = np.clip(local[1:], lim[..., 0], lim[..., 1])


def _arm_targets(rng: np.random.Generator, side: float) -> tuple[np.ndarray, np.ndarray, float]:
    """World directions (canonical frame: x right, y down, z away) of the upper arm and forearm of one
    arm (``side`` +1 the person's left, at image-right in a front view), and a twist."""
    kind = rng.choice(["hang", "hang", "swing", "akimbo", "face", "front", "behind", "raise"],
                      p=[0.28, 0.12, 0.2, 0.1, 0.07, 0.1, 0.08, 0.05])
    abd = rng.uniform(0.06, 0.35)  # away from the body, radians
    fwd = rng.uniform(-0.25, 0.3)  # forwards (towards the camera: -z)
    bend, bend_dir = rng.uniform(0.0, 0.4), np.array([0.0, 0.0, -1.0])
    if kind == "swing":
        fwd = rng.uniform(-0.6, 0.6)
        bend = rng.uniform(0.1, 0.7)
    elif kind == "akimbo":
        abd, fwd = rng.uniform(0.5, 0.8), rng.uniform(-0.2, 0.1)
        bend, bend_dir = rng.uniform(1.6, 2.1), np.array([-side, 0.3, 0.0])
    elif kind == "face":
        abd, fwd = rng.uniform(0.15, 0.4), rng.uniform(0.2, 0.6)
        bend, bend_dir = rng.uniform(2.1, 2.5), np.array([-side * 0.5, -1.0, -0.3])
    elif kind == "front":
        abd, fwd = rng.uniform(0.05, 0.25), rng.uniform(0.1, 0.5)
        bend, bend_dir = rng.uniform(1.2, 1.8), np.array([-side, 0.0, -0.6])
    elif kind == "behind":
        abd, fwd = rng.uniform(0.05, 0.25), rng.uniform(-0.5, -0.25)
        bend, bend_dir = rng.uniform(1.0, 1.6), np.array([-side, 0.0, 0.6])
    elif kind == "raise":
        abd, fwd = rng.uniform(0.9, 1.8), rng.uniform(-0.2, 0.4)
        bend, bend_dir = rng.uniform(0.2, 1.6), np.array([-side * 0.3, -1.0, -0.2])
    upper = np.array([side * math.sin(abd) * math.cos(fwd), math.cos(abd) * math.cos(fwd), -math.sin(fwd)])
    upper = _unit(upper)
    # bend the forearm by `bend` towards bend_dir (projected perpendicular to the upper arm)
    perp = bend_dir - (bend_dir @ upper) * upper
    if np.linalg.norm(perp) < 1e-6:
        perp = np.array([0.0, 0.0, -1.0]) - upper[2] * upper
    perp = _unit(perp)
    fore = _unit(math.cos(bend) * upper + math.sin(bend) * perp)
    return upper, fore, float(rng.uniform(-0.4, 0.4))


def sample_poses(body: BodyModel, rng: np.random.Generator, n: int,
                 yaws: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``n`` sampled poses: ``global_orient (n, 3)`` and ``body_pose (n, P, 3)`` (float32, canonical
    frame). ``yaws`` (radians, 0 = facing the camera) overrides the random turn."""
    rig = _rig(body)
    names = rig.names
    orient = np.zeros((n, 3))
    poses = np.zeros((n, len(names) - 1, 3))
    for i in range(n):
        local = np.zeros((len(names), 3))
        if yaws is not None:
            yaw = float(yaws[i])
        else:
            view = rng.choice(3, p=[0.5, 0.3, 0.2])
            yaw = [rng.uniform(-0.6, 0.6), rng.choice([-1, 1]) * rng.uniform(0.9, 2.1),
                   math.pi + rng.uniform(-0.6, 0.6)][view]
        tilt = _rodrigues(np.array([rng.normal(0, 0.03), 0.0, rng.normal(0, 0.04)]))
        orient[i] = _log(tilt @ _rodrigues(np.array([0.0, yaw, 0.0])))
        # spine, neck and head: small turns
        for name, sd in (("spine_mid", (0.06, 0.1, 0.05)), ("spine_top", (0.05, 0.1, 0.05)),
                         ("neck", (0.1, 0.2, 0.08)), ("head", (0.1, 0.25, 0.08))):
            local[names.index(name)] = rng.normal(0.0, sd)
        # legs
        stance = rng.choice(["stand", "shift", "walk", "cross"], p=[0.35, 0.25, 0.3, 0.1])
        for s, side in (("l", 1.0), ("r", -1.0)):
            hip, knee = names.index(f"hip_{s}"), names.index(f"knee_{s}")
            local[hip] = [rng.normal(-0.03, 0.06), rng.normal(0.0, 0.1), side * rng.uniform(-0.02, 0.12)]
            local[knee] = [rng.uniform(0.0, 0.12), 0.0, 0.0]
        if stance == "shift":
            s = "l" if rng.random() < 0.5 else "r"
            local[names.index(f"knee_{s}")][0] = rng.uniform(0.15, 0.45)
            local[names.index(f"hip_{s}")][0] = -rng.uniform(0.05, 0.2)
        elif stance == "walk":
            stride = rng.uniform(0.2, 0.5)
            front = "l" if rng.random() < 0.5 else "r"
            back = "r" if front == "l" else "l"
            local[names.index(f"hip_{front}")][0] = -stride
            local[names.index(f"hip_{back}")][0] = stride * rng.uniform(0.5, 0.9)
            local[names.index(f"knee_{front}")][0] = rng.uniform(0.05, 0.3)
            local[names.index(f"knee_{back}")][0] = rng.uniform(0.2, 0.6)
        elif stance == "cross":
            local[names.index("hip_l")][2] = -rng.uniform(0.08, 0.16)
            local[names.index("hip_r")][2] = rng.uniform(0.08, 0.16)
            local[names.index("hip_l" if rng.random() < 0.5 else "hip_r")][0] = -0.1
        _clamp_limits(rig, local)
        # arms from directions (after the spine, which they hang from), relative to the upper body
        world = _world_rotations(rig, local)
        spine_rot = world[names.index("spine_top")]
        for s, side in (("l", 1.0), ("r", -1.0)):
            upper, fore, twist = _arm_targets(rng, side)
            shoulder, elbow = names.index(f"shoulder_{s}"), names.index(f"elbow_{s}")
            parent = world[names.index(f"clavicle_{s}")]
            local[shoulder] = _direction_rotation(rig, parent, f"shoulder_{s}", rig.joints[elbow], spine_rot @ upper,
                                                  twist * 0.5)
            local[elbow] = _direction_rotation(rig, parent @ _rodrigues(local[shoulder]), f"elbow_{s}", rig.wrist[s],
                                               spine_rot @ fore, twist)
        poses[i] = local[1:]
    return orient.astype(np.float32), poses.astype(np.float32)


def mirror_pose(body: BodyModel, orient: np.ndarray, pose: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Left-right mirror of poses ``(n, 3)``, ``(n, P, 3)``: joints swapped, rotations reflected in x."""
    names = list(body.pose_joints)
    flip = np.array([1.0, -1.0, -1.0], np.float32)
    out = pose * flip
    for a, b in _MIRROR_SWAP:
        ia, ib = names.index(a), names.index(b)
        out[:, [ia, ib]] = out[:, [ib, ia]]
    return orient * flip, out


class RealPoses:
    """Fitted real poses (see the module docstring); an empty bank when the file is missing."""

    def __init__(self, path: str | Path | None = REAL_POSES_FILE) -> None:
        self.path = None if path is None else Path(path)
        self.orient = np.zeros((0, 3), np.float32)
        self.pose = np.zeros((0, 14, 3), np.float32)
        self.camera = np.zeros((0, 3), np.float32)
        self.keypoints = np.zeros((0, 18, 2), np.float32)
        self.visible = np.zeros((0, 18), bool)
        self.names: list[str] = []
        self.digest = "none"
        if self.path is not None and self.path.is_file():
            with np.load(self.path, allow_pickle=False) as d:
                self.orient = d["global_orient"].astype(np.float32)
                self.pose = d["body_pose"].astype(np.float32)
                self.camera = d["camera"].astype(np.float32)
                self.keypoints = d["keypoints"].astype(np.float32)
                self.visible = np.unpackbits(d["visible"], axis=1, count=18).astype(bool)
                self.names = bytes(d["names"]).decode("ascii").split("\n")
            self.digest = hashlib.sha256(self.path.read_bytes()).hexdigest()[:16]

    def __len__(self) -> int:
        return len(self.names)

    @property
    def source(self) -> str:
        """``deepfashion-test-fits`` or ``none``."""
        return "deepfashion-test-fits" if len(self) else "none"


# which keypoint constrains each posable joint (a joint whose keypoint the annotation lacks keeps the
# sampler's rotation instead of the fit's unconstrained one)
_CONSTRAINED_BY = {"shoulder_l": "l_elbow", "elbow_l": "l_wrist", "shoulder_r": "r_elbow", "elbow_r": "r_wrist",
                   "hip_l": "l_knee", "knee_l": "l_ankle", "hip_r": "r_knee", "knee_r": "r_ankle"}


_SOFT_LIMITS = {"spine_mid": 0.25, "spine_top": 0.25, "neck": 0.3, "head": 0.3}


def merge_real_pose(body: BodyModel, sampled: np.ndarray, fitted: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """A fitted body pose ``(P, 3)``, its spine, neck and head turns softened (x0.6, at most 0.25-0.3
    rad per axis), whose limbs the annotation does not show (``visible (18,)``) take the ``sampled``
    pose's rotations (legs below a close-up crop stand or walk instead of drifting)."""
    names = list(body.pose_joints)
    out = fitted.copy()
    # keypoints barely tell the spine, neck and head apart: fits drift to the joint limits there;
    # soften them to a plausible posture (the picture's keypoints come from the body anyway)
    for joint, limit in _SOFT_LIMITS.items():
        j = names.index(joint)
        out[j] = np.clip(out[j] * 0.6, -limit, limit)
    for joint, point in _CONSTRAINED_BY.items():
        if not visible[KEYPOINT_NAMES.index(point)]:
            out[names.index(joint)] = sampled[names.index(joint)]
    return out


def mirror_keypoints(xy: np.ndarray, visible: np.ndarray, width: float = 176.0) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints ``(18, 2)`` of a mirrored picture ``width`` wide: x flipped, left and right swapped."""
    perm = list(FLIP_PERMUTATION)
    out = xy[perm].copy()
    out[:, 0] = (width - 1.0) - out[:, 0]
    return out, visible[perm].copy()


def frame_cameras(vertices: torch.Tensor, keypoints: torch.Tensor, rng: np.random.Generator, height: int,
                  width: int, real_xy: np.ndarray | None = None, real_visible: np.ndarray | None = None,
                  body_height: float = 1.7, closeup: float = 0.15) -> np.ndarray:
    """Weak-perspective cameras ``(n, 3)`` = ``(px per metre, tx, ty)`` for posed ``vertices (n, V, 3)``.

    Sampled poses: full length, a 1.75 m adult filling 80-92% of the height (px per metre fixed, so
    children come out smaller), the lowest point on a floor line at 93-98% of the height, centred
    with a little jitter; with probability ``closeup`` a tighter crop (head near the top, 1.3-1.8x
    closer). Real poses (rows of ``real_xy (n, 18, 2)`` in the 256x176 frame that are finite, seen
    where ``real_visible``): the scale and shift that put the body's ``keypoints (n, 18, 3)`` on the
    annotated ones (least squares), i.e. the photo's framing.
    """
    v = vertices.detach().cpu().double().numpy()
    kp = keypoints.detach().cpu().double().numpy()[..., :2]
    n = v.shape[0]
    cams = np.zeros((n, 3))
    frame = np.array([width / 176.0, height / 256.0])
    for i in range(n):
        ys, xs = v[i, :, 1], v[i, :, 0]
        if real_xy is not None and real_visible is not None and np.isfinite(real_xy[i]).all():
            seen = real_visible[i]
            q = (real_xy[i][seen] + 0.5) * frame - 0.5
            p = kp[i][seen]
            pc, qc = p - p.mean(0), q - q.mean(0)
            sc = float((pc * qc).sum() / max(float((pc * pc).sum()), 1e-9))
            sc = float(np.clip(sc, 0.4 * height, 3.0 * height)) * rng.uniform(0.97, 1.03)
            t = q.mean(0) - sc * p.mean(0)
            cams[i] = (sc, t[0] + rng.normal(0, 0.01 * width), t[1])
            continue
        scale = height * rng.uniform(0.80, 0.92) / 1.75
        floor = height * rng.uniform(0.93, 0.98)
        if rng.random() < closeup and body_height >= 1.3:
            scale *= rng.uniform(1.3, 1.8)
            top = height * rng.uniform(0.03, 0.1)
            ty = top - scale * ys.min()
        else:
            ty = floor - scale * ys.max()
        cx = 0.5 * (xs.min() + xs.max())
        tx = (width - 1) / 2.0 - scale * cx + rng.normal(0, 0.03 * width)
        cams[i] = (scale, tx, ty)
    return cams.astype(np.float32)
