"""The one interface every 3D body model implements (Anny, SMPL/SMPL-X/SMPL-H through ``smplx``).

Conventions shared by every implementation, the fitter, the rasteriser and the correspondence:

* **Canonical body frame** (metres): ``x`` to the camera's right, ``y`` *down*, ``z`` away from
  the camera (depth). With ``global_orient = 0`` the body stands upright and *faces the camera*
  (its nose points to ``-z``); the person's left side is then at ``+x``. Each implementation turns
  its native axes into this frame, so the fitter and the renderer never know which model they
  drive. The body's root (pelvis) sits near the origin for a zero translation.
* **Pose**: ``global_orient (B, 3)`` axis-angle of the whole body about its root, in the canonical
  frame; ``body_pose (B, P, 3)`` axis-angle local rotations of the model's ``pose_joints`` (a
  subset of its rig: the joints the 18 keypoints can constrain); ``shape (B, S)`` the model's shape
  coefficients (Anny: phenotype sliders in ``[0, 1]``; SMPL: betas, ~N(0, 1)).
* **Keypoints**: ``(B, 18, 3)`` in the OpenPose-COCO-18 order of ``glocal_cli.data.keypoints``
  (nose, neck, r_shoulder, ... l_ear); ``neck`` is the midpoint of the shoulders.
* **Parts**: every face carries one of :data:`BODY_PARTS` (0 is the background, never a face);
  :data:`PART_TO_SEMANTIC` maps them to the 8 parsing classes of ``glocal_cli.data.parsing``.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

import torch
from torch import nn

BODY_PARTS: tuple[str, ...] = (
    "background", "head", "torso", "upperarm.L", "lowerarm.L", "hand.L", "upperarm.R", "lowerarm.R",
    "hand.R", "upperleg.L", "lowerleg.L", "foot.L", "upperleg.R", "lowerleg.R", "foot.R",
)
"""Body-part labels of mesh faces (index 0 = background in rendered part maps)."""

NUM_BODY_PARTS = len(BODY_PARTS)

# 8 parsing classes: 0 background, 1 hair, 2 upper clothes, 3 lower clothes, 4 shoes, 5 face,
# 6 arms, 7 legs. A naked mesh has no hair or clothes: the torso is taken as upper clothes and the
# upper legs as lower clothes (the commonest case in fashion photos); a person mask refines it.
PART_TO_SEMANTIC: tuple[int, ...] = (0, 5, 2, 6, 6, 6, 6, 6, 6, 3, 7, 4, 3, 7, 4)
"""Parsing class of each body part (same order as :data:`BODY_PARTS`)."""


def axis_angle_to_matrix(rotvec: torch.Tensor) -> torch.Tensor:
    """Rodrigues' formula, ``(..., 3) -> (..., 3, 3)``, smooth at zero (for gradients)."""
    theta2 = (rotvec * rotvec).sum(-1, keepdim=True)
    theta = torch.sqrt(theta2 + 1e-12)
    small = theta2 < 1e-8
    # sin(t)/t and (1-cos t)/t^2 with Taylor expansions near zero
    a = torch.where(small, 1 - theta2 / 6, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24, (1 - torch.cos(theta)) / theta2.clamp_min(1e-12))
    x, y, z = rotvec.unbind(-1)
    zero = torch.zeros_like(x)
    k = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1).reshape(*rotvec.shape[:-1], 3, 3)
    eye = torch.eye(3, dtype=rotvec.dtype, device=rotvec.device)
    # k @ k = r r^T - |r|^2 I, written elementwise (3x3 matmuls are slow in large batches, e.g. under vmap)
    kk = rotvec[..., :, None] * rotvec[..., None, :] - theta2[..., None] * eye
    return eye + a[..., None] * k + b[..., None] * kk


def batch_matmul(a: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``a (B, M, K) @ w (K, N)`` as one matrix product per batch item (``torch.bmm``). ``a @ w`` folds the batch
    into one ``(B*M, K)`` product, whose kernel may round an item's numbers differently with the batch size; here
    every item gets the same numbers whatever it is batched with (a body fit must not depend on its batch)."""
    return torch.bmm(a, w.expand(a.shape[0], -1, -1))


def skew(v: torch.Tensor) -> torch.Tensor:
    """The cross-product matrix ``[v]x`` of ``(..., 3)`` vectors, ``(..., 3, 3)``."""
    x, y, z = v.unbind(-1)
    zero = torch.zeros_like(x)
    return torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1).reshape(*v.shape[:-1], 3, 3)


def so3_right_jacobian(rotvec: torch.Tensor) -> torch.Tensor:
    """``J_r(r)`` of ``(..., 3)`` axis-angles, ``(..., 3, 3)``: ``exp([r + d]x) ~= exp([r]x) exp([J_r d]x)`` for a
    small ``d``. ``J_r = I - (1 - cos t) / t^2 [r]x + (t - sin t) / t^3 [r]x^2``, Taylor-expanded near ``t = 0``."""
    theta2 = (rotvec * rotvec).sum(-1, keepdim=True)
    theta = torch.sqrt(theta2 + 1e-12)
    small = theta2 < 1e-6
    b = torch.where(small, 0.5 - theta2 / 24, (1 - torch.cos(theta)) / theta2.clamp_min(1e-12))
    c = torch.where(small, 1.0 / 6 - theta2 / 120, (theta - torch.sin(theta)) / (theta2 * theta).clamp_min(1e-18))
    k = skew(rotvec)
    eye = torch.eye(3, dtype=rotvec.dtype, device=rotvec.device)
    kk = rotvec[..., :, None] * rotvec[..., None, :] - theta2[..., None] * eye
    return eye - b[..., None] * k + c[..., None] * kk


def matmul3(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b`` for stacks of 3x3 matrices, elementwise (several times faster than ``bmm`` on the CPU for
    many tiny matrices, and under ``torch.func`` transforms)."""
    return (a[..., :, :, None] * b[..., None, :, :]).sum(-2)


def matvec3(a: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``(a @ v[..., None])[..., 0]`` for stacks of 3x3 matrices and 3-vectors, elementwise."""
    return (a * v[..., None, :]).sum(-1)


CHILD_KEYPOINT: dict[str, int] = {
    # Anny's compact rig
    "clavicle_l": 5, "shoulder_l": 6, "elbow_l": 7, "clavicle_r": 2, "shoulder_r": 3, "elbow_r": 4,
    "hip_l": 12, "knee_l": 13, "hip_r": 9, "knee_r": 10, "neck": 0, "head": 0,
    # SMPL / SMPL-H / SMPL-X joint names
    "left_collar": 5, "left_shoulder": 6, "left_elbow": 7, "right_collar": 2, "right_shoulder": 3,
    "right_elbow": 4, "left_hip": 12, "left_knee": 13, "right_hip": 9, "right_knee": 10,
}
"""OpenPose-18 keypoint placed by each named joint's rotation (see :meth:`BodyModel.child_keypoints`)."""


@dataclass
class BodyOutput:
    """What a body model returns for a batch.

    ``vertices`` ``(B, V, 3)`` (``None`` when a model was asked for keypoints only) and
    ``keypoints`` ``(B, 18, 3)`` in the canonical body frame (metres).
    """

    vertices: torch.Tensor | None
    keypoints: torch.Tensor


class BodyModel(nn.Module, abc.ABC):
    """A posable, shapeable triangle mesh with COCO-18 keypoints and per-face part labels.

    Subclasses set ``faces`` (``long (F, 3)``) and ``face_parts`` (``long (F,)``) as buffers,
    ``pose_joints`` (names of the ``P`` posable joints, in ``body_pose`` order), ``shape_dim``,
    and implement :meth:`forward`. ``pose_prior_weight`` ``(P,)`` is the per-joint L2 weight the
    fitter uses (stiff spine and neck, free limbs); ``joint_limits`` ``(P, 3, 2)`` bounds each
    axis-angle component in radians (canonical frame; ``inf`` = free).
    """

    name: str = "body"
    pose_joints: tuple[str, ...] = ()
    shape_dim: int = 0
    faces: torch.Tensor
    face_parts: torch.Tensor
    pose_prior_weight: torch.Tensor
    joint_limits: torch.Tensor

    def child_keypoints(self) -> tuple[int, ...]:
        """For each pose joint, the OpenPose-18 keypoint its rotation mainly places (-1: none). A joint
        whose keypoint is missing in an image is held near rest by the fitter (a close-up has no
        knees: its legs must not fold into the frame). Resolved from the joint names."""
        return tuple(CHILD_KEYPOINT.get(name, -1) for name in self.pose_joints)

    def default_shape(self, batch: int = 1) -> torch.Tensor:
        """The mean shape, ``(batch, shape_dim)``."""
        return torch.zeros(batch, self.shape_dim, device=self.faces.device)

    def shape_bounds(self) -> tuple[float, float] | None:
        """``(low, high)`` for every shape coefficient, or ``None`` when unbounded."""
        return None

    @abc.abstractmethod
    def forward(self, global_orient: torch.Tensor, body_pose: torch.Tensor, shape: torch.Tensor,
                vertices: bool = True) -> BodyOutput:
        """Pose and shape the body. ``vertices=False`` may skip the full mesh (keypoints only)."""

    @property
    @abc.abstractmethod
    def num_vertices(self) -> int:
        """Number of mesh vertices ``V``."""

    def keypoint_jacobian(self, global_orient: torch.Tensor, body_pose: torch.Tensor,
                          shape: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Keypoints ``(B, 18, 3)`` and their exact derivatives ``(B, 18, 3, 3 + 3P + S)`` with respect to the
        global orientation, the body pose (joint-major) and the shape, in closed form; ``None`` when the model
        has none (the fitter then differentiates :meth:`forward` in forward mode)."""
        return None

    def zero_pose(self, batch: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """``(global_orient, body_pose)`` zeros for ``batch`` bodies."""
        dev = self.faces.device
        return torch.zeros(batch, 3, device=dev), torch.zeros(batch, len(self.pose_joints), 3, device=dev)
