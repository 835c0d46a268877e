"""SMPL, SMPL-H and SMPL-X bodies from a user's model file, through the ``smplx`` package.

The model files are not ours to ship: users download them under the MPI licence and point glocal
at them with ``--body-model smplx:PATH``. ``PATH`` is

* a ``.npz`` file (``SMPL_NEUTRAL.npz``, ``SMPLH_MALE.npz``, ``SMPLX_FEMALE.npz``, ...), read with
  ``numpy.load(allow_pickle=False)``: the safe format, preferred;
* a ``.pkl`` file (``SMPL_NEUTRAL.pkl``, ``basicModel_neutral_lbs_10_207_0_v1.0.0.pkl``, ...).
  A pickle can run arbitrary code when it is read, so glocal opens one **only when the user names
  the file itself**, and reads it through ``smplx``'s own loader. The official SMPL pickles hold
  ``chumpy`` objects and need the ``chumpy`` package to load; convert them once to ``.npz``
  instead where you can;
* a folder laid out as ``smplx.create`` expects (``DIR/smpl/SMPL_NEUTRAL.npz`` or
  ``DIR/SMPL_NEUTRAL.npz``; likewise ``smplh/SMPLH_*``, ``smplx/SMPLX_*``): only ``.npz`` files are
  picked from a folder, never pickles.

The model type is read from the file's contents (24 joints: SMPL, 52: SMPL-H, 55: SMPL-X), the
gender from the file name or its folder's (``smplh/male/model.npz``), else the ``gender`` option;
the gender only picks the file in a folder and is reported, the file's contents define the body.

What this module takes from ``smplx``: its pickle loader (``smplx.SMPL``), its Rodrigues formula
(``batch_rodrigues``), its joint names and its standard vertex ids of the nose, eyes and ears
(``smplx.vertex_ids``). The forward pass is our own short linear-blend skinning, equal to
``smplx.lbs.lbs`` (a test checks it): it poses only the root and the ``pose_joints`` (hands, jaw,
feet stay at rest), walks the kinematic tree level by level with index buffers (no host syncs on
CUDA, where ``smplx`` indexes a Python list with a tensor once per joint; ~10 batched matmuls
instead of one per joint), uses only the pose blend shapes of the posed joints, regresses the rest
joints from precomputed shape directions and, for keypoints only (``vertices=False``), skins just
the five face vertices.

Frames. ``smplx``'s native frame has ``y`` up, ``z`` towards the viewer and the person facing
``+z`` with their left at ``+x``. The canonical frame of :mod:`glocal_cli.body.base` (``x`` right,
``y`` down, ``z`` away from the camera, the body facing the camera) is that frame turned 180
degrees about ``x``: ``(x, y, z) -> (x, -y, -z)``. The model's arrays are turned once at load time
(template, shape and pose blend shapes), so poses, joint limits and outputs are all canonical; an
axis-angle ``w`` in the canonical frame is ``(w_x, -w_y, -w_z)`` in the native one. The pelvis joint
is moved to the origin.

Keypoints (OpenPose COCO-18): shoulders, elbows, wrists, hips, knees and ankles are the posed SMPL
joints of those names; nose, eyes and ears are mesh vertices (``smplx.vertex_ids``, the ids SMPLify-X
uses for OpenPose); the neck is the midpoint of the shoulders. The hips are SMPL's hip joints (the
femoral heads): OpenPose/COCO hips are annotated a few centimetres wider and lower, on the outside
of the pelvis, so a fitter should trust the hip points less than the limb points.
"""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from glocal_cli.body.base import BODY_PARTS, BodyModel, BodyOutput
from glocal_cli.data.keypoints import KEYPOINT_NAMES
from glocal_cli.errors import InputError, NotAvailableError

__all__ = ["MODEL_TYPES", "SMPL_POSE_JOINTS", "SmplxBody", "joint_names_for", "resolve_model_file"]

MODEL_TYPES: dict[int, str] = {24: "smpl", 52: "smplh", 55: "smplx"}
"""Model type by number of joints in the file."""

SMPL_POSE_JOINTS: tuple[str, ...] = (
    "spine1", "spine2", "spine3", "neck", "head",
    "left_collar", "right_collar", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_hip", "right_hip", "left_knee", "right_knee",
)
"""The joints the 18 keypoints constrain, in ``body_pose`` order. Wrists, ankles, feet, hands and
the jaw move no keypoint and stay at rest."""

REQUIRED_KEYS: tuple[str, ...] = (
    "v_template", "f", "J_regressor", "weights", "kintree_table", "shapedirs", "posedirs",
)
"""The arrays every SMPL-format model file holds (the names ``smplx`` reads)."""

_FILE_PREFIX = {"smpl": "SMPL", "smplh": "SMPLH", "smplx": "SMPLX"}
_GENDERS = ("neutral", "male", "female")

# (x, y, z) native -> canonical: a 180-degree turn about x.
_NATIVE_TO_CANONICAL = np.array([1.0, -1.0, -1.0])

# Per-joint L2 weight of the pose prior: stiff spine, collars and neck, free limbs. The same scale
# as Anny's, so one fitter configuration serves both; SMPL splits a spine bend over three joints
# (Anny: two), so 4.5 per joint costs a total bend as much as Anny's 3.0 on two.
_PRIOR_WEIGHT: dict[str, float] = {
    "spine1": 4.5, "spine2": 4.5, "spine3": 4.5, "neck": 10.0, "head": 6.0,
    "left_collar": 10.0, "right_collar": 10.0,
    "left_shoulder": 0.5, "right_shoulder": 0.5, "left_elbow": 0.5, "right_elbow": 0.5,
    "left_hip": 1.0, "right_hip": 1.0, "left_knee": 1.0, "right_knee": 1.0,
}

# Axis-angle bounds (radians) per component in the canonical frame, for the centre and left joints;
# right joints are their mirror images. From SMPL's T-pose rest: the left arm lies along +x, legs
# along +y (down), the body faces -z. Signs: knee flexion (shin back, +z) is +x; hip flexion (thigh
# forward, -z) is -x; left hip abduction (+x) is -z; left elbow flexion (forearm forward) is +y;
# left arm down from the T-pose is +z; forward bending of spine/neck/head is +x.
_LIMITS_LEFT: dict[str, tuple[tuple[float, float], tuple[float, float], tuple[float, float]]] = {
    "spine1": ((-0.3, 0.6), (-0.4, 0.4), (-0.3, 0.3)),
    "spine2": ((-0.3, 0.6), (-0.4, 0.4), (-0.3, 0.3)),
    "spine3": ((-0.3, 0.6), (-0.4, 0.4), (-0.3, 0.3)),
    "neck": ((-0.5, 0.6), (-0.6, 0.6), (-0.4, 0.4)),
    "head": ((-0.5, 0.5), (-0.8, 0.8), (-0.4, 0.4)),
    "left_collar": ((-0.35, 0.35), (-0.35, 0.35), (-0.35, 0.35)),
    "left_shoulder": ((-1.5, 1.5), (-0.8, 2.0), (-1.6, 1.7)),
    "left_elbow": ((-1.0, 1.0), (-0.1, 2.6), (-0.3, 0.3)),
    "left_hip": ((-2.4, 0.6), (-0.8, 0.8), (-1.2, 0.5)),
    "left_knee": ((-0.1, 2.6), (-0.3, 0.3), (-0.2, 0.2)),
}


def _limits(name: str) -> tuple[tuple[float, float], ...]:
    """Bounds of joint ``name``; a right joint mirrors its left twin: ``(w_x, -w_y, -w_z)``."""
    if name.startswith("right_"):
        (x, (ylo, yhi), (zlo, zhi)) = _LIMITS_LEFT["left_" + name[len("right_"):]]
        return (x, (-yhi, -ylo), (-zhi, -zlo))
    return _LIMITS_LEFT[name]


def joint_names_for(model_type: str) -> tuple[str, ...]:
    """Names of the joints of an SMPL (24), SMPL-H (52) or SMPL-X (55) rig, in file order."""
    from smplx.joint_names import JOINT_NAMES  # SMPL-X order: 22 body, jaw, 2 eyes, 2 x 15 hand

    body = tuple(JOINT_NAMES[:22])
    if model_type == "smpl":
        return body + ("left_hand", "right_hand")
    if model_type == "smplh":
        return body + tuple(JOINT_NAMES[25:55])
    if model_type == "smplx":
        return tuple(JOINT_NAMES[:55])
    raise ValueError(f"unknown model type {model_type!r}")


def _part_of_joint(name: str) -> str:
    """The body part (:data:`BODY_PARTS`) a joint's skinned vertices belong to."""
    side = "L" if name.startswith("left_") else "R" if name.startswith("right_") else ""
    bare = name.split("_", 1)[1] if side else name
    if bare in ("head", "neck", "jaw") or bare.startswith("eye"):
        return "head"  # the neck's skin counts as head (parsing class "face")
    if bare in ("pelvis", "spine1", "spine2", "spine3", "collar"):
        return "torso"
    table = {
        "shoulder": "upperarm", "elbow": "lowerarm", "wrist": "hand", "hand": "hand",
        "hip": "upperleg", "knee": "lowerleg", "ankle": "foot", "foot": "foot",
    }
    if bare in table:
        return f"{table[bare]}.{side}"
    if re.fullmatch(r"(index|middle|pinky|ring|thumb)\d", bare):
        return f"hand.{side}"
    raise ValueError(f"no body part for joint {name!r}")


def _gender_from_name(name: str) -> str | None:
    tokens = re.split(r"[^a-z]+", name.lower())
    for token, gender in (("neutral", "neutral"), ("female", "female"), ("male", "male"),
                          ("f", "female"), ("m", "male")):
        if token in tokens:
            return gender
    return None


def resolve_model_file(path: str | Path, model_type: str | None = None, gender: str | None = None) -> Path:
    """The model file ``path`` names: the file itself, or the ``.npz`` found in a folder.

    In a folder, ``{TYPE}_{GENDER}.npz`` is looked for in ``DIR`` and ``DIR/{type}`` for the
    requested ``model_type`` (else smpl, smplh, smplx in that order, ``smplx.create``'s default
    first) and ``gender`` (default neutral). Pickles are never picked from a folder.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise InputError(f"{path}: no such file or folder (expected an SMPL/SMPL-H/SMPL-X model "
                         ".npz or .pkl, or a folder of them)")
    if path.is_file():
        if path.suffix.lower() not in (".npz", ".pkl"):
            raise InputError(f"{path}: not a body model file (expected an SMPL/SMPL-H/SMPL-X .npz or .pkl)")
        return path
    if model_type is not None and model_type not in _FILE_PREFIX:
        raise InputError(f"{path}: unknown model type {model_type!r} (expected smpl, smplh or smplx)")
    types = (model_type,) if model_type else tuple(_FILE_PREFIX)
    gender = (gender or "neutral").lower()
    pickles: list[Path] = []
    for kind in types:
        for folder in (path, path / kind):
            for stem in (f"{_FILE_PREFIX[kind]}_{gender.upper()}", f"{_FILE_PREFIX[kind]}_{gender}"):
                if (folder / f"{stem}.npz").is_file():
                    return folder / f"{stem}.npz"
                if (folder / f"{stem}.pkl").is_file():
                    pickles.append(folder / f"{stem}.pkl")
    wanted = f"{_FILE_PREFIX[model_type] if model_type else 'SMPL|SMPLH|SMPLX'}_{gender.upper()}.npz"
    if pickles:
        raise InputError(f"{path}: found only the pickle {pickles[0]}; a pickle can run code when read, "
                         "so pass that .pkl file itself to load it, or convert it to .npz")
    raise InputError(f"{path}: no {wanted} in this folder or its smpl/smplh/smplx subfolders")


@dataclass
class _ModelArrays:
    """The SMPL-format arrays, native frame, float64; posedirs as ``(9 (J-1), 3 V)`` like smplx's."""

    v_template: np.ndarray  # (V, 3)
    faces: np.ndarray  # (F, 3)
    j_regressor: np.ndarray  # (J, V)
    weights: np.ndarray  # (V, J)
    parents: list[int]  # (J,), -1 for the root
    shapedirs: np.ndarray  # (V, 3, S)
    posedirs: np.ndarray  # (9 (J-1), 3 V)


def _read_npz(path: Path, num_betas: int) -> _ModelArrays:
    try:
        data = np.load(path, allow_pickle=False)
    except Exception as err:  # zip, header or pickle refusal: all mean "not a readable .npz"
        raise InputError(f"{path}: not a readable .npz file ({type(err).__name__}: {err})") from None
    with data:
        missing = [key for key in REQUIRED_KEYS if key not in data.files]
        if missing:
            raise InputError(f"{path}: not an SMPL-format model, missing key(s) {', '.join(missing)}")
        arrays: dict[str, np.ndarray] = {}
        for key in REQUIRED_KEYS:
            try:
                arrays[key] = np.asarray(data[key])
            except ValueError:
                raise InputError(f"{path}: key {key!r} holds pickled objects, which glocal does not read; "
                                 "save it as a plain (dense) numpy array") from None
    posedirs = arrays["posedirs"]
    if posedirs.ndim != 3:
        raise InputError(f"{path}: posedirs has shape {posedirs.shape}, expected (V, 3, 9 (J-1))")
    v = arrays["v_template"].astype(np.float64)
    posedirs = posedirs.astype(np.float64).reshape(-1, posedirs.shape[-1]).T  # smplx's (9 (J-1), 3 V)
    return _ModelArrays(
        v_template=v, faces=arrays["f"].astype(np.int64),
        j_regressor=arrays["J_regressor"].astype(np.float64),
        weights=arrays["weights"].astype(np.float64), parents=_parents(path, arrays["kintree_table"]),
        shapedirs=arrays["shapedirs"].astype(np.float64)[:, :, :num_betas], posedirs=posedirs,
    )


def _parents(path: Path, kintree: np.ndarray) -> list[int]:
    if kintree.ndim != 2 or kintree.shape[0] != 2:
        raise InputError(f"{path}: kintree_table has shape {kintree.shape}, expected (2, J)")
    parents = [int(p) for p in kintree[0]]
    parents[0] = -1  # the files store 2**32 - 1 or -1 for the root
    if any(not 0 <= p < j for j, p in enumerate(parents) if j):
        raise InputError(f"{path}: kintree_table is not a tree in topological order (parent after child)")
    return parents


def _read_pickle(path: Path, num_betas: int) -> _ModelArrays:
    """Read an SMPL-format pickle through ``smplx.SMPL``'s loader (works for SMPL-H/SMPL-X too)."""
    import smplx

    try:
        with contextlib.redirect_stdout(io.StringIO()):  # smplx prints a shape-space warning
            model = smplx.SMPL(model_path=str(path), num_betas=num_betas)
    except ImportError as err:  # chumpy missing, or installed but broken (it fails on numpy >= 1.24)
        raise NotAvailableError(f"{path}: this pickle needs a package that could not be imported ({err}); "
                                "the official SMPL pickles hold chumpy arrays: convert the file once to .npz "
                                "where chumpy works, and pass the .npz") from None
    except AttributeError as err:
        import traceback

        if any("chumpy" in frame.filename for frame in traceback.extract_tb(err.__traceback__)):
            # chumpy installed but broken (it calls inspect.getargspec, gone since Python 3.11)
            raise NotAvailableError(f"{path}: this pickle holds chumpy arrays and chumpy fails to import here "
                                    f"({err}); convert the file once to .npz where chumpy works, and pass the "
                                    ".npz") from None
        key = str(err).rsplit(" ", 1)[-1].strip("'\"")
        raise InputError(f"{path}: not an SMPL-format model, missing key {key}") from None
    except Exception as err:
        raise InputError(f"{path}: not a readable SMPL-format pickle ({type(err).__name__}: {err})") from None
    parents = [int(p) for p in model.parents.tolist()]
    parents[0] = -1
    return _ModelArrays(
        v_template=model.v_template.double().numpy(), faces=model.faces_tensor.numpy(),
        j_regressor=model.J_regressor.double().numpy(), weights=model.lbs_weights.double().numpy(),
        parents=parents, shapedirs=model.shapedirs.double().numpy(), posedirs=model.posedirs.double().numpy(),
    )


def _check(path: Path, m: _ModelArrays) -> str:
    """Validate shapes; return the model type."""
    num_v = m.v_template.shape[0]
    num_j = len(m.parents)
    expect = {
        "v_template": (m.v_template.shape, (num_v, 3)),
        "J_regressor": (m.j_regressor.shape, (num_j, num_v)),
        "weights": (m.weights.shape, (num_v, num_j)),
        "posedirs": (m.posedirs.shape, (9 * (num_j - 1), 3 * num_v)),
    }
    for key, (got, want) in expect.items():
        if tuple(got) != want:
            raise InputError(f"{path}: {key} has shape {tuple(got)}, expected {want} "
                             f"({num_v} vertices, {num_j} joints)")
    if m.faces.ndim != 2 or m.faces.shape[1] != 3 or m.faces.min() < 0 or m.faces.max() >= num_v:
        raise InputError(f"{path}: f is not a (F, 3) array of vertex ids below {num_v}")
    if m.shapedirs.ndim != 3 or m.shapedirs.shape[:2] != (num_v, 3):
        raise InputError(f"{path}: shapedirs has shape {m.shapedirs.shape}, expected ({num_v}, 3, S)")
    if num_j not in MODEL_TYPES:
        raise InputError(f"{path}: {num_j} joints; expected 24 (SMPL), 52 (SMPL-H) or 55 (SMPL-X)")
    return MODEL_TYPES[num_j]


class SmplxBody(BodyModel):
    """An SMPL / SMPL-H / SMPL-X body read from a user's model file (see the module docstring).

    ``forward(global_orient (B, 3), body_pose (B, P, 3), shape (B, S))`` returns vertices and COCO-18
    keypoints in the canonical frame of :mod:`glocal_cli.body.base`, pelvis at the origin.
    ``shape`` holds the first ``shape_dim`` betas (``num_betas``, fewer when the file has fewer).

    Args:
        path: model ``.npz`` / ``.pkl`` file, or a folder (``.npz`` only; see
            :func:`resolve_model_file`).
        model_type: ``smpl``, ``smplh`` or ``smplx``: picks the file in a folder; for a file it must
            agree with the contents.
        gender: ``neutral``, ``male`` or ``female``: picks the file in a folder; for a file it must
            agree with the file name when the name says one.
        num_betas: number of shape coefficients (10 is the usual choice for fitting keypoints).
        keypoint_vertex_ids: vertex ids of ``nose``, ``reye``, ``leye``, ``rear``, ``lear`` for a mesh
            with another topology; default the standard ids of ``smplx.vertex_ids``.
    """

    def __init__(self, path: str | Path, *, model_type: str | None = None, gender: str | None = None,
                 num_betas: int = 10, keypoint_vertex_ids: Mapping[str, int] | None = None) -> None:
        super().__init__()
        if gender is not None and gender.lower() not in _GENDERS:
            raise InputError(f"{path}: unknown gender {gender!r} (expected neutral, male or female)")
        if num_betas < 1:
            raise InputError(f"{path}: num_betas must be at least 1, got {num_betas}")
        file = resolve_model_file(path, model_type, gender)
        reader = _read_pickle if file.suffix.lower() == ".pkl" else _read_npz
        arrays = reader(file, num_betas)
        kind = _check(file, arrays)
        if model_type is not None and model_type != kind:
            raise InputError(f"{file}: holds a {kind} model ({len(arrays.parents)} joints), "
                             f"not {model_type}")
        named = _gender_from_name(file.stem) or _gender_from_name(file.parent.name)  # smplh/male/model.npz
        if gender is not None and named is not None and named != gender.lower():
            raise InputError(f"{file}: the file name says {named}, not {gender.lower()}")
        self.path = file
        self.name = kind
        self.model_type = kind
        self.gender = named or (gender.lower() if gender else "unknown")
        self.joint_names = joint_names_for(kind)
        self.pose_joints = SMPL_POSE_JOINTS
        self.shape_dim = int(arrays.shapedirs.shape[2])
        self._build(file, arrays, keypoint_vertex_ids)

    # ------------------------------------------------------------------ set-up
    def _build(self, file: Path, m: _ModelArrays, vertex_ids: Mapping[str, int] | None) -> None:
        from smplx.vertex_ids import vertex_ids as standard_ids

        sign = _NATIVE_TO_CANONICAL
        num_v, num_j = m.v_template.shape[0], len(m.parents)
        index = {name: j for j, name in enumerate(self.joint_names)}
        pose_idx = [index[name] for name in self.pose_joints]
        f32 = torch.float32

        def buf(name: str, value: np.ndarray | list[int], dtype: torch.dtype = torch.long) -> None:
            self.register_buffer(name, torch.as_tensor(np.asarray(value), dtype=dtype), persistent=False)

        # Geometry turned to the canonical frame once (see the module docstring).
        buf("v_template", m.v_template * sign, f32)
        buf("shapedirs", m.shapedirs * sign[None, :, None], f32)
        # Rest joints are linear in the betas: regress the template and the shape directions once.
        buf("j_template", m.j_regressor @ (m.v_template * sign), f32)
        buf("j_shapedirs", np.einsum("jv,vcs->jcs", m.j_regressor, m.shapedirs * sign[None, :, None]), f32)
        buf("lbs_weights", m.weights, f32)
        # Pose blend shapes of the posed joints only: rows (joint, a, b) of R - I, columns (vertex, c).
        # In canonical coordinates R - I has entries s_a s_b (R_n - I)_ab, and offsets turn by s_c.
        posedirs = m.posedirs.reshape(num_j - 1, 3, 3, num_v, 3)
        posedirs = posedirs * (sign[:, None, None, None] * sign[None, :, None, None] * sign)[None]
        posedirs = posedirs[[j - 1 for j in pose_idx]].reshape(9 * len(pose_idx), num_v, 3)
        buf("posedirs", posedirs.reshape(9 * len(pose_idx), 3 * num_v), f32)
        buf("faces", m.faces)

        # Rotation of every joint gathered from [root, posed..., identity].
        gather = [len(pose_idx) + 1] * num_j
        gather[0] = 0
        for p, j in enumerate(pose_idx):
            gather[j] = p + 1
        buf("_rot_gather", gather)

        # Kinematic tree by depth: parents of a level all sit in the level above.
        depth = [0] * num_j
        for j in range(1, num_j):
            depth[j] = depth[m.parents[j]] + 1
        levels = [[j for j in range(num_j) if depth[j] == d] for d in range(max(depth) + 1)]
        self._num_levels = len(levels)
        for d in range(1, len(levels)):
            above = {j: k for k, j in enumerate(levels[d - 1])}
            buf(f"_level{d}_joints", levels[d])
            buf(f"_level{d}_parents", [m.parents[j] for j in levels[d]])
            buf(f"_level{d}_parent_slot", [above[m.parents[j]] for j in levels[d]])
        order = [j for level in levels for j in level]
        buf("_unlevel", np.argsort(order))

        # Keypoints: joints, face vertices and the neck, gathered in COCO-18 order.
        standard = standard_ids["smplx" if self.name == "smplx" else "smplh"]  # SMPL shares SMPL-H's mesh
        ids = dict(vertex_ids) if vertex_ids is not None else dict(standard)
        face_names = {"nose": "nose", "r_eye": "reye", "l_eye": "leye", "r_ear": "rear", "l_ear": "lear"}
        missing = [v for v in face_names.values() if v not in ids]
        if missing:
            raise InputError(f"{file}: keypoint_vertex_ids lacks {', '.join(missing)}")
        bad = {k: ids[k] for k in face_names.values() if not 0 <= int(ids[k]) < num_v}
        if bad:
            raise InputError(f"{file}: has {num_v} vertices, too few for the standard {self.name} "
                             f"keypoint vertex ids {bad}; is this a modified mesh?")
        sources: list[tuple[str, int]] = []  # (joints | vertices | neck, index within that group)
        kp_joints: list[int] = []
        kp_verts: list[int] = []
        for name in KEYPOINT_NAMES:
            if name in face_names:
                sources.append(("v", len(kp_verts)))
                kp_verts.append(int(ids[face_names[name]]))
            elif name == "neck":
                sources.append(("n", 0))
            else:
                side, bare = name.split("_", 1)
                sources.append(("j", len(kp_joints)))
                kp_joints.append(index[f"{'left' if side == 'l' else 'right'}_{bare}"])
        offsets = {"j": 0, "v": len(kp_joints), "n": len(kp_joints) + len(kp_verts)}
        buf("_kp_joints", kp_joints)
        buf("_kp_verts", kp_verts)
        # The same vertices' rest data, for the keypoints-only path (``vertices=False``).
        buf("_kp_v_template", m.v_template[kp_verts] * sign, f32)
        buf("_kp_shapedirs", m.shapedirs[kp_verts] * sign[None, :, None], f32)
        buf("_kp_posedirs", posedirs[:, kp_verts].reshape(len(posedirs), 3 * len(kp_verts)), f32)
        buf("_kp_weights", m.weights[kp_verts], f32)
        buf("_kp_shoulders", [index["left_shoulder"], index["right_shoulder"]])
        buf("_kp_order", [offsets[group] + k for group, k in sources])

        # Parts: the dominant skinning joint of each face (summed weights of its three vertices).
        joint_part = [BODY_PARTS.index(_part_of_joint(name)) for name in self.joint_names]
        face_joint = m.weights[m.faces].sum(axis=1).argmax(axis=1)
        buf("face_parts", np.asarray(joint_part)[face_joint])

        buf("pose_prior_weight", [_PRIOR_WEIGHT[name] for name in self.pose_joints], f32)
        buf("joint_limits", [_limits(name) for name in self.pose_joints], f32)

    # ------------------------------------------------------------------ interface
    @property
    def num_vertices(self) -> int:
        return int(self.v_template.shape[0])

    def shape_bounds(self) -> tuple[float, float] | None:
        """Betas are unit-variance PCA coefficients; +-3 keeps fits among plausible bodies."""
        return (-3.0, 3.0)

    def forward(self, global_orient: torch.Tensor, body_pose: torch.Tensor, shape: torch.Tensor,
                vertices: bool = True) -> BodyOutput:
        """Pose and shape ``B`` bodies (see the class docstring). ``vertices=False`` skins only the
        five face-keypoint vertices and returns ``vertices=None`` (the fitter's fast path)."""
        from smplx.lbs import batch_rodrigues

        batch = global_orient.shape[0]
        num_p = len(self.pose_joints)
        if body_pose.shape[1:] != (num_p, 3) or shape.shape[-1] != self.shape_dim:
            raise ValueError(f"{self.name}: body_pose must be (B, {num_p}, 3) and shape "
                             f"(B, {self.shape_dim}); got {tuple(body_pose.shape)} and {tuple(shape.shape)}")
        shape = shape.expand(batch, -1)
        joints_rest = self.j_template + torch.einsum("bs,jcs->bjc", shape, self.j_shapedirs)  # (B, J, 3)

        rot_root = batch_rodrigues(global_orient.reshape(-1, 3)).view(batch, 1, 3, 3)
        rot_pose = batch_rodrigues(body_pose.reshape(-1, 3)).view(batch, num_p, 3, 3)
        eye = torch.eye(3, dtype=rot_pose.dtype, device=rot_pose.device)
        pose_feature = (rot_pose - eye).reshape(batch, num_p * 9)
        rots = torch.cat([rot_root, rot_pose, eye.expand(batch, 1, 3, 3)], dim=1)
        rots = rots.index_select(1, self._rot_gather)  # (B, J, 3, 3), identity where not posed

        # World rotation and position of every joint, one tree level at a time.
        world_rot = [rot_root]
        world_pos = [joints_rest[:, :1]]
        for d in range(1, self._num_levels):
            joints = getattr(self, f"_level{d}_joints")
            slot = getattr(self, f"_level{d}_parent_slot")
            parents = getattr(self, f"_level{d}_parents")
            parent_rot = world_rot[-1].index_select(1, slot)
            offset = joints_rest.index_select(1, joints) - joints_rest.index_select(1, parents)
            world_rot.append(parent_rot @ rots.index_select(1, joints))
            moved = (parent_rot @ offset.unsqueeze(-1)).squeeze(-1)
            world_pos.append(world_pos[-1].index_select(1, slot) + moved)
        g_rot = torch.cat(world_rot, dim=1).index_select(1, self._unlevel)  # (B, J, 3, 3)
        g_pos = torch.cat(world_pos, dim=1).index_select(1, self._unlevel)  # (B, J, 3)

        # Each joint's rest -> posed affine map; the pelvis (rotated about itself) goes to the origin.
        g_trans = g_pos - (g_rot @ joints_rest.unsqueeze(-1)).squeeze(-1) - g_pos[:, :1]
        affine = torch.cat([g_rot.flatten(2), g_trans], dim=2)  # (B, J, 12)
        if vertices:
            verts = self._skin(affine, shape, pose_feature, self.v_template, self.shapedirs, self.posedirs,
                               self.lbs_weights)
            face_points = verts.index_select(1, self._kp_verts)
        else:
            verts = None
            face_points = self._skin(affine, shape, pose_feature, self._kp_v_template, self._kp_shapedirs,
                                     self._kp_posedirs, self._kp_weights)
        joints_posed = g_pos - g_pos[:, :1]
        neck = joints_posed.index_select(1, self._kp_shoulders).mean(dim=1, keepdim=True)
        keypoints = torch.cat([joints_posed.index_select(1, self._kp_joints), face_points, neck], dim=1)
        return BodyOutput(vertices=verts, keypoints=keypoints.index_select(1, self._kp_order))

    @staticmethod
    def _skin(affine: torch.Tensor, shape: torch.Tensor, pose_feature: torch.Tensor, v_template: torch.Tensor,
              shapedirs: torch.Tensor, posedirs: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Shape and pose blend shapes, then linear blend skinning of ``v_template (V, 3)``."""
        v_rest = v_template + torch.einsum("bs,vcs->bvc", shape, shapedirs)
        v_rest = v_rest + (pose_feature @ posedirs).view(shape.shape[0], -1, 3)
        per_vertex = torch.einsum("vj,bjk->bvk", weights, affine)  # (B, V, 12)
        rot = per_vertex[..., :9].unflatten(-1, (3, 3))
        return (rot @ v_rest.unsqueeze(-1)).squeeze(-1) + per_vertex[..., 9:]

    def extra_repr(self) -> str:
        return (f"{self.name}, gender={self.gender}, {self.num_vertices} vertices, "
                f"{self.shape_dim} betas, file={self.path}")
