"""Configuration of the 3D body model: which model, how it is fitted, how correspondence is rendered."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class BodyFitConfig:
    """Keypoint fitting (``glocal_cli.body.fit``); weights are for errors in pixels of a 256-high frame."""

    yaw_starts: tuple[float, ...] = (0.0, 90.0, 180.0, 270.0)
    """Initial body turns (degrees about the vertical) fitted in parallel; the best is kept."""
    iters_camera: int = 25
    """L-BFGS iterations of stage 1a (camera + global orientation on the torso points)."""
    iters_pose: int = 150
    """L-BFGS iterations of stage 1b (+ body pose on all points), for every yaw start."""
    iters_shape: int = 200
    """L-BFGS iterations of stage 2 (camera, pose and shape of the best start)."""
    pose_prior: float = 1.0
    """Weight of the L2 pose prior (times each joint's stiffness)."""
    limit_weight: float = 4000.0
    """Weight of the squared joint-limit violation (radians^2)."""
    shape_prior: float = 2.0
    """Weight of the L2 prior on shape coefficients."""
    missing_stiffness: float = 50.0
    """Pose-prior multiplier of a joint whose keypoint is missing (held near rest: a close-up's legs stay straight)."""
    upright_weight: float = 2.0
    """Weight of the lean of the body's vertical axis towards or away from the camera (keypoints cannot see it;
    without this term a fit tilts the pelvis to shorten a torso)."""
    truncation_weight: float = 10.0
    """Weight of the out-of-frame term: when both knees (or both ankles) are missing, the photo is taken to end
    above them (a close-up), and their projections are pushed below the frame's bottom edge (squared hinge,
    pixels of a 256-high frame). Without it a close-up's fit folds the legs into the frame as if seated and
    tilts the torso. 0 = off."""
    fit_shape: bool = True
    """Fit the body shape in stage 2 (shared by images of one person); off = the mean body."""
    face_weight: float = 1.0
    """Weight of the facing term (nose in front of the ears when the face is seen, behind otherwise)."""
    face_margin: float = 0.02
    """Depth margin (metres) of the facing term."""
    silhouette_weight: float = 0.0
    """Weight of the person-mask term (projected body vertices outside the mask); used when masks exist."""
    iters_warm: int = 40
    """L-BFGS iterations of a warm-started fit (``fit_keypoints(init=...)``: stage 2 only, from a nearby pose's
    fit; ``glocal serve`` refits a dragged pose this way)."""
    solver: str = "lm"
    """Optimiser: ``lm`` (batched Levenberg-Marquardt with an exact Jacobian, every image (every person, when
    shape is shared) damped and stepped on its own: converges in tens of steps; ``lm_*`` iterations) or ``lbfgs``
    (the fit before it: L-BFGS over the whole batch, ``iters_*`` iterations, ~4x slower for the same fit). The
    silhouette term (masks) always runs stage 2 with L-BFGS."""
    facing_min_width: float = 0.5
    """``lm``: fit only the front (back) yaw start where the keypoints decide the facing: the face is seen (only
    the back of the head is) and both the shoulders and the hips lie in the front's (back's) left-right order,
    the shoulders spread wider than this times the torso's length (neck to hips); other images get every
    ``yaw_starts`` entry. 0 = always every start."""
    lm_iters_camera: int = 5
    """``lm``: steps of stage 1a (camera + global orientation on the torso points), every yaw start."""
    lm_iters_pose: int = 6
    """``lm``: steps of stage 1b (+ body pose on all points), every yaw start."""
    lm_iters_shape: int = 15
    """``lm``: steps of stage 2 (camera, pose and shape of the best start)."""
    lm_iters_warm: int = 6
    """``lm``: steps of a warm-started fit (``fit_keypoints(init=...)``)."""
    lm_tolerance: float = 1e-4
    """``lm``: a stage stops early once every image's (person's) last accepted step lowered its loss by less than
    this fraction of it."""
    min_keypoints: int = 6
    """Fewer visible keypoints than this: no fit (the learned flow is used instead)."""
    max_rms_px: float = 8.0
    """A fit whose keypoint RMS exceeds this (pixels of a 256-high frame) is flagged and not used."""


@dataclass(frozen=True)
class BodyConfig:
    """The 3D body model in the loop (fit, render, correspond)."""

    model: str = "anny"
    """Body model: ``anny`` (shipped, free), ``anny:PATH`` (another export), or ``smplx:PATH`` (a SMPL,
    SMPL-H or SMPL-X model file or folder that you downloaded under its licence)."""
    fit: BodyFitConfig = field(default_factory=BodyFitConfig)
    """Keypoint fitting."""
    depth_tolerance: float = 0.03
    """Visibility test: a target surface point is visible in the source when the source's z-buffer at its
    projection is within this many metres of its own depth."""
    fit_batch_size: int = 16
    """Images fitted together (one batched optimisation)."""
