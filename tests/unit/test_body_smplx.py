"""SmplxBody on small SMPL-format models built here (the real SMPL files cannot ship).

The test models are stick figures in SMPL's native frame (y up, the person faces +z, their left at
+x, T-pose): one box per bone skinned to the joint that turns it, a head box with nose, eye, ear
and back-of-head vertices, one vertex on each joint (the joint regressor picks it), random shape
and pose blend shapes.
"""

from __future__ import annotations

import math
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from glocal_cli.body.base import BODY_PARTS
from glocal_cli.body.smplx_body import SMPL_POSE_JOINTS, SmplxBody, joint_names_for
from glocal_cli.data.keypoints import KEYPOINT_NAMES
from glocal_cli.errors import InputError, NotAvailableError

KP = {name: i for i, name in enumerate(KEYPOINT_NAMES)}
SIGN = torch.tensor([1.0, -1.0, -1.0])  # native -> canonical

BODY_JOINTS = {  # name: (parent, native position in metres)
    "pelvis": (None, (0.0, 1.0, 0.0)), "left_hip": ("pelvis", (0.09, 0.92, 0.0)),
    "right_hip": ("pelvis", (-0.09, 0.92, 0.0)), "spine1": ("pelvis", (0.0, 1.1, 0.0)),
    "left_knee": ("left_hip", (0.1, 0.52, 0.0)), "right_knee": ("right_hip", (-0.1, 0.52, 0.0)),
    "spine2": ("spine1", (0.0, 1.22, 0.0)), "left_ankle": ("left_knee", (0.1, 0.1, 0.0)),
    "right_ankle": ("right_knee", (-0.1, 0.1, 0.0)), "spine3": ("spine2", (0.0, 1.3, 0.0)),
    "left_foot": ("left_ankle", (0.1, 0.03, 0.1)), "right_foot": ("right_ankle", (-0.1, 0.03, 0.1)),
    "neck": ("spine3", (0.0, 1.5, 0.0)), "left_collar": ("spine3", (0.07, 1.42, 0.0)),
    "right_collar": ("spine3", (-0.07, 1.42, 0.0)), "head": ("neck", (0.0, 1.6, 0.0)),
    "left_shoulder": ("left_collar", (0.18, 1.42, 0.0)),
    "right_shoulder": ("right_collar", (-0.18, 1.42, 0.0)),
    "left_elbow": ("left_shoulder", (0.45, 1.42, 0.0)),
    "right_elbow": ("right_shoulder", (-0.45, 1.42, 0.0)),
    "left_wrist": ("left_elbow", (0.7, 1.42, 0.0)), "right_wrist": ("right_elbow", (-0.7, 1.42, 0.0)),
}
FACE_POINTS = {  # native positions; the person faces +z
    "nose": (0.0, 1.66, 0.11), "reye": (-0.035, 1.7, 0.09), "leye": (0.035, 1.7, 0.09),
    "rear": (-0.08, 1.67, 0.0), "lear": (0.08, 1.67, 0.0), "back": (0.0, 1.67, -0.1),
}


def _joint_table(kind: str) -> list[tuple[str, str | None, tuple[float, float, float]]]:
    names = joint_names_for(kind)
    table = []
    for name in names:
        if name in BODY_JOINTS:
            parent, pos = BODY_JOINTS[name]
        elif name.endswith("_hand"):
            side = 1.0 if name.startswith("left") else -1.0
            parent, pos = name.replace("hand", "wrist"), (0.78 * side, 1.42, 0.0)
        elif name == "jaw" or name.endswith("_eye_smplhf"):
            side = 0.0 if name == "jaw" else (0.03 if name.startswith("left") else -0.03)
            parent, pos = "head", (side, 1.64 if name == "jaw" else 1.7, 0.05)
        else:  # finger: left_index1 ... right_thumb3
            side = 1.0 if name.startswith("left") else -1.0
            finger, k = name.split("_")[1][:-1], int(name[-1])
            lane = ("thumb", "index", "middle", "ring", "pinky").index(finger)
            parent = f"{name.split('_')[0]}_wrist" if k == 1 else name[:-1] + str(k - 1)
            pos = ((0.74 + 0.025 * k) * side, 1.42, 0.04 - 0.02 * lane)
        table.append((name, parent, pos))
    return table


def _box(a: np.ndarray, b: np.ndarray, r: float) -> np.ndarray:
    axis = b - a
    axis = axis / max(np.linalg.norm(axis), 1e-9)
    u = np.cross(axis, [0.0, 0.0, 1.0] if abs(axis[2]) < 0.9 else [1.0, 0.0, 0.0])
    u /= np.linalg.norm(u)
    w = np.cross(axis, u)
    return np.array([end + r * (su * u + sw * w) for end in (a, b) for su in (-1, 1) for sw in (-1, 1)])


BOX_FACES = np.array([[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
                      [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]])


def make_model(kind: str = "smpl", num_betas: int = 12, seed: int = 0) -> tuple[dict[str, np.ndarray], dict]:
    """SMPL-format arrays (the keys smplx reads) and the vertex ids of the face points."""
    rng = np.random.default_rng(seed)
    table = _joint_table(kind)
    index = {name: j for j, (name, _, _) in enumerate(table)}
    pos = np.array([p for _, _, p in table])
    num_j = len(table)
    verts: list[np.ndarray] = []
    weights: list[np.ndarray] = []
    faces: list[np.ndarray] = []

    def add(points: np.ndarray, w: np.ndarray) -> int:
        start = sum(len(v) for v in verts)
        verts.append(points)
        weights.append(w)
        return start

    for j in range(num_j):  # a vertex on every joint, for the regressor
        add(pos[j][None], np.eye(num_j)[j][None])
    for j, (_, parent, _) in enumerate(table):
        if parent is None:
            continue
        p = index[parent]
        w = np.zeros((8, num_j))
        w[:4, p] = 1.0
        w[4:, p], w[4:, j] = 0.7, 0.3  # blended towards the child end
        faces.append(add(_box(pos[p], pos[j], 0.03), w) + BOX_FACES)
    head = index["head"]
    skull = _box(pos[head] + [0, 0.02, 0], pos[head] + [0, 0.12, 0], 0.09)
    faces.append(add(skull, np.eye(num_j)[[head] * 8]) + BOX_FACES)
    face_ids = {}
    for name, p in FACE_POINTS.items():
        face_ids[name] = add(np.array([p]), np.eye(num_j)[head][None])
    v_template = np.concatenate(verts)
    num_v = len(v_template)
    j_regressor = np.eye(num_v)[:num_j]
    parents = [2**32 - 1] + [index[p] for _, p, _ in table[1:]]  # the files store 2**32 - 1 for the root
    kintree = np.array([parents, list(range(num_j))], dtype=np.uint32)
    arrays = {
        "v_template": v_template, "f": np.concatenate(faces).astype(np.uint32), "J_regressor": j_regressor,
        "weights": np.concatenate(weights), "kintree_table": kintree,
        "shapedirs": rng.normal(0.0, 0.01, (num_v, 3, num_betas)),
        "posedirs": rng.normal(0.0, 0.002, (num_v, 3, 9 * (num_j - 1))),
    }
    return arrays, face_ids


def write_npz(path: Path, kind: str = "smpl", **overrides) -> tuple[Path, dict]:
    arrays, ids = make_model(kind)
    arrays.update(overrides)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path, ids


@pytest.fixture
def smpl_file(tmp_path: Path) -> tuple[Path, dict]:
    return write_npz(tmp_path / "SMPL_NEUTRAL.npz")


@pytest.fixture
def body(smpl_file) -> SmplxBody:
    path, ids = smpl_file
    return SmplxBody(path, keypoint_vertex_ids=ids)


def random_inputs(body: SmplxBody, batch: int = 3, seed: int = 1):
    gen = torch.Generator().manual_seed(seed)
    glob = torch.randn(batch, 3, generator=gen) * 0.5
    pose = torch.randn(batch, len(body.pose_joints), 3, generator=gen) * 0.3
    shape = torch.randn(batch, body.shape_dim, generator=gen)
    return glob, pose, shape


def test_loads_and_reports_shapes(body: SmplxBody, smpl_file) -> None:
    arrays, _ = make_model()
    out = body(*random_inputs(body, batch=2))
    assert body.name == "smpl" and body.gender == "neutral" and body.shape_dim == 10
    assert out.vertices.shape == (2, len(arrays["v_template"]), 3) and out.keypoints.shape == (2, 18, 3)
    assert body.num_vertices == len(arrays["v_template"])
    assert body.faces.dtype == torch.long and body.faces.shape == (len(arrays["f"]), 3)
    assert body.face_parts.shape == (len(arrays["f"]),)
    assert body.pose_joints == SMPL_POSE_JOINTS
    assert body.pose_prior_weight.shape == (len(SMPL_POSE_JOINTS),)
    assert body.joint_limits.shape == (len(SMPL_POSE_JOINTS), 3, 2)
    assert bool((body.joint_limits[..., 0] < body.joint_limits[..., 1]).all())
    spine = body.pose_prior_weight[body.pose_joints.index("spine2")]
    assert spine > body.pose_prior_weight[body.pose_joints.index("left_elbow")]


def test_matches_smplx_lbs_in_the_canonical_frame(body: SmplxBody, smpl_file) -> None:
    """Our skinning equals smplx's ``lbs`` on the native arrays, turned to the canonical frame."""
    from smplx.lbs import lbs

    arrays, ids = make_model()
    glob, pose, shape = random_inputs(body, batch=4)
    out = body(glob, pose, shape)
    names = joint_names_for("smpl")
    full = torch.zeros(4, len(names), 3)
    full[:, 0] = glob * SIGN  # an axis-angle turns like the frame: (w_x, -w_y, -w_z)
    for p, name in enumerate(body.pose_joints):
        full[:, names.index(name)] = pose[:, p] * SIGN
    parents = torch.tensor(arrays["kintree_table"][0].astype(np.int64))
    parents[0] = -1
    skip = ("f", "kintree_table")
    native = {k: torch.tensor(v, dtype=torch.float32) for k, v in arrays.items() if k not in skip}
    posedirs = native["posedirs"].reshape(-1, native["posedirs"].shape[-1]).T
    verts, joints = lbs(shape, full.reshape(4, -1), native["v_template"], native["shapedirs"][:, :, :10],
                        posedirs, native["J_regressor"], parents, native["weights"])
    expect_v = (verts - joints[:, :1]) * SIGN
    expect_j = (joints - joints[:, :1]) * SIGN
    torch.testing.assert_close(out.vertices, expect_v, atol=2e-5, rtol=1e-4)
    for kp, joint in (("l_shoulder", "left_shoulder"), ("r_elbow", "right_elbow"), ("l_wrist", "left_wrist"),
                      ("r_hip", "right_hip"), ("l_knee", "left_knee"), ("r_ankle", "right_ankle")):
        expect = expect_j[:, names.index(joint)]
        torch.testing.assert_close(out.keypoints[:, KP[kp]], expect, atol=2e-5, rtol=1e-4)
    for kp, vid in (("nose", "nose"), ("r_eye", "reye"), ("l_ear", "lear")):
        torch.testing.assert_close(out.keypoints[:, KP[kp]], expect_v[:, ids[vid]], atol=2e-5, rtol=1e-4)
    neck = 0.5 * (out.keypoints[:, KP["l_shoulder"]] + out.keypoints[:, KP["r_shoulder"]])
    torch.testing.assert_close(out.keypoints[:, KP["neck"]], neck)


def test_canonical_frame_at_zero_pose(body: SmplxBody, smpl_file) -> None:
    _, ids = smpl_file
    glob, pose = body.zero_pose(1)
    out = body(glob, pose, body.default_shape(1))
    kp, verts = out.keypoints[0], out.vertices[0]
    pelvis = verts[0]  # the first vertex sits on the pelvis joint
    torch.testing.assert_close(pelvis, torch.zeros(3), atol=1e-6, rtol=0)
    heights = kp[[KP["nose"], KP["neck"], KP["r_hip"], KP["r_knee"], KP["r_ankle"]], 1]
    assert bool((heights.diff() > 0).all()), heights  # y down: head above the feet
    assert kp[KP["nose"], 2] < verts[ids["back"], 2] and kp[KP["nose"], 2] < pelvis[2]  # faces the camera
    for part in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle", "eye", "ear"):
        assert kp[KP["l_" + part], 0] > 0 > kp[KP["r_" + part], 0], part  # the person's left at +x


def test_turning_180_degrees_swaps_left_and_right(body: SmplxBody, smpl_file) -> None:
    _, ids = smpl_file
    _, pose = body.zero_pose(2)
    glob = torch.tensor([[0.0, 0.0, 0.0], [0.0, math.pi, 0.0]])  # about the vertical (y) axis
    out = body(glob, pose, body.default_shape(2))
    front, back = out.keypoints
    for part in ("shoulder", "wrist", "hip", "ankle"):
        assert back[KP["l_" + part], 0] < 0 < back[KP["r_" + part], 0], part
        torch.testing.assert_close(back[KP["l_" + part], 0], -front[KP["l_" + part], 0], atol=1e-5, rtol=0)
    torch.testing.assert_close(back[:, 1], front[:, 1], atol=1e-5, rtol=0)  # still upright
    assert back[KP["nose"], 2] > out.vertices[1, ids["back"], 2]  # now faces away


def test_joint_limits_bend_the_right_way(body: SmplxBody) -> None:
    """The middle of each hinge's range bends the limb the way a human joint does."""
    idx = {name: i for i, name in enumerate(body.pose_joints)}
    lim = body.joint_limits
    glob, pose = body.zero_pose(4)
    hinges = (("left_knee", 0), ("right_elbow", 1), ("left_elbow", 1), ("right_hip", 0))
    for b, (joint, axis) in enumerate(hinges):
        low, high = lim[idx[joint], axis]
        pose[b, idx[joint], axis] = low / 2 if joint == "right_hip" else (low + high) / 2  # hip: flexion
    kp = body(glob, pose, body.default_shape(4)).keypoints
    assert kp[0, KP["l_ankle"], 2] > kp[0, KP["l_knee"], 2] + 0.1  # shin goes back
    assert kp[1, KP["r_wrist"], 2] < kp[1, KP["r_elbow"], 2] - 0.1  # forearm comes forward
    assert kp[2, KP["l_wrist"], 2] < kp[2, KP["l_elbow"], 2] - 0.1
    assert kp[3, KP["r_knee"], 2] < kp[3, KP["r_hip"], 2] - 0.1  # hip flexion: thigh forward
    left, right = lim[idx["left_elbow"]], lim[idx["right_elbow"]]
    torch.testing.assert_close(right[1], -left[1].flip(0))  # mirrored twins


def test_keypoints_only_path_matches_the_full_mesh(body: SmplxBody) -> None:
    inputs = random_inputs(body, batch=3)
    full = body(*inputs)
    fast = body(*inputs, vertices=False)
    assert fast.vertices is None
    torch.testing.assert_close(fast.keypoints, full.keypoints, atol=1e-6, rtol=1e-5)


def test_shape_changes_the_body(body: SmplxBody) -> None:
    glob, pose = body.zero_pose(2)
    shape = torch.zeros(2, body.shape_dim)
    shape[1, 0] = 2.0
    verts = body(glob, pose, shape).vertices
    assert (verts[1] - verts[0]).abs().max() > 1e-3


@pytest.mark.parametrize("zero", [True, False])
def test_gradients_reach_pose_and_shape(body: SmplxBody, zero: bool) -> None:
    glob, pose, shape = random_inputs(body, batch=2)
    if zero:
        glob, pose = body.zero_pose(2)
    glob, pose, shape = (t.clone().requires_grad_(True) for t in (glob, pose, shape))
    out = body(glob, pose, shape)
    (out.keypoints.square().sum() + out.vertices.square().sum()).backward()
    for t in (glob, pose, shape):
        assert t.grad is not None and torch.isfinite(t.grad).all() and t.grad.abs().sum() > 0
    used = pose.grad.abs().sum(dim=(0, 2)) > 0
    assert bool(used.all()), [n for n, u in zip(body.pose_joints, used, strict=True) if not u]


def test_face_parts_follow_skinning_and_sides(body: SmplxBody) -> None:
    glob, pose = body.zero_pose(1)
    verts = body(glob, pose, body.default_shape(1)).vertices[0]
    centre = verts[body.faces].mean(dim=1)
    parts = body.face_parts
    assert set(parts.tolist()) == set(range(1, len(BODY_PARTS)))  # every part, never background
    for k, name in enumerate(BODY_PARTS[1:], start=1):
        x = centre[parts == k, 0]
        if name.endswith(".L"):
            assert bool((x > 0).all()), name
        elif name.endswith(".R"):
            assert bool((x < 0).all()), name
    head_y = centre[parts == BODY_PARTS.index("head"), 1].mean()
    assert head_y < centre[parts == BODY_PARTS.index("torso"), 1].mean()


def test_pickle_named_explicitly_loads_through_smplx(tmp_path: Path, body: SmplxBody) -> None:
    arrays, ids = make_model()
    pkl = tmp_path / "pkl" / "basicModel_f_lbs_10_207_0_v1.0.0.pkl"
    pkl.parent.mkdir()
    pkl.write_bytes(pickle.dumps(arrays))
    from_pkl = SmplxBody(pkl, keypoint_vertex_ids=ids)
    assert from_pkl.gender == "female" and from_pkl.name == "smpl"
    inputs = random_inputs(body)
    torch.testing.assert_close(from_pkl(*inputs).vertices, body(*inputs).vertices)


def test_folder_picks_the_npz(tmp_path: Path) -> None:
    path, ids = write_npz(tmp_path / "models" / "smpl" / "SMPL_MALE.npz")
    loaded = SmplxBody(tmp_path / "models", gender="male", keypoint_vertex_ids=ids)
    assert loaded.path == path and loaded.gender == "male"
    with pytest.raises(InputError, match="no SMPL"):
        SmplxBody(tmp_path / "models", keypoint_vertex_ids=ids)  # neutral by default: absent


@pytest.mark.parametrize("kind,joints", [("smplh", 52), ("smplx", 55)])
def test_smplh_and_smplx_are_detected(tmp_path: Path, kind: str, joints: int) -> None:
    path, ids = write_npz(tmp_path / f"{kind.upper()}_NEUTRAL.npz", kind)
    loaded = SmplxBody(path, keypoint_vertex_ids=ids)
    assert loaded.name == kind and len(loaded.joint_names) == joints
    out = loaded(*random_inputs(loaded, batch=2))
    assert out.keypoints.shape == (2, 18, 3) and torch.isfinite(out.vertices).all()
    hands = {BODY_PARTS.index("hand.L"), BODY_PARTS.index("hand.R")}
    assert hands <= set(loaded.face_parts.tolist())
    with pytest.raises(InputError, match="not smpl"):
        SmplxBody(path, model_type="smpl", keypoint_vertex_ids=ids)


def test_errors_are_one_line_and_name_the_file(tmp_path: Path, smpl_file) -> None:
    path, ids = smpl_file
    cases = []
    with pytest.raises(InputError, match="no such file") as err:
        SmplxBody(tmp_path / "absent.npz")
    cases.append(err)
    bad_ext = tmp_path / "model.obj"
    bad_ext.write_text("v 0 0 0\n")
    with pytest.raises(InputError, match="expected an SMPL") as err:
        SmplxBody(bad_ext)
    cases.append(err)
    missing, _ = write_npz(tmp_path / "missing" / "SMPL_NEUTRAL.npz", posedirs=None, weights=None)
    with pytest.raises(InputError, match="missing key.*weights.*posedirs") as err:
        SmplxBody(missing)
    cases.append(err)
    objects, _ = write_npz(tmp_path / "objects" / "SMPL_NEUTRAL.npz", J_regressor=np.array([{"sparse": 1}]))
    with pytest.raises(InputError, match="'J_regressor' holds pickled objects") as err:
        SmplxBody(objects)
    cases.append(err)
    not_zip = tmp_path / "SMPL_MALE.npz"
    not_zip.write_bytes(b"not a zip")
    with pytest.raises(InputError, match="not a readable .npz") as err:
        SmplxBody(not_zip)
    cases.append(err)
    only_pkl = tmp_path / "pickles"
    only_pkl.mkdir()
    (only_pkl / "SMPL_NEUTRAL.pkl").write_bytes(pickle.dumps(make_model()[0]))
    with pytest.raises(InputError, match="pass that .pkl file itself") as err:
        SmplxBody(only_pkl)
    cases.append(err)
    with pytest.raises(InputError, match="too few for the standard smpl keypoint vertex ids") as err:
        SmplxBody(path)  # the test mesh is far smaller than SMPL's 6890 vertices
    cases.append(err)
    with pytest.raises(InputError, match="file name says neutral") as err:
        SmplxBody(path, gender="female", keypoint_vertex_ids=ids)
    cases.append(err)
    for err in cases:
        message = str(err.value)
        assert "\n" not in message and str(tmp_path) in message, message


def test_chumpy_pickle_says_what_is_missing(tmp_path: Path) -> None:
    try:
        import chumpy  # noqa: F401
    except (ImportError, AttributeError):  # missing, or installed but broken on Python >= 3.11
        pass
    else:
        pytest.skip("a working chumpy is installed here")
    pkl = tmp_path / "SMPL_NEUTRAL.pkl"
    pkl.write_bytes(b"\x80\x02cchumpy.ch\nCh\nq\x00.")  # a pickle that refers to chumpy's array class
    with pytest.raises(NotAvailableError, match="chumpy"):
        SmplxBody(pkl)
