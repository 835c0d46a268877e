"""Configuration of the image frame, pose maps and dataset loading."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class DataConfig:
    """Image frame, pose-map and data-loading settings shared by every command."""

    height: int = 256
    """Model frame height in pixels (DeepFashion 256, Market-1501 128). Multiple of the network stride."""
    width: int = 176
    """Model frame width in pixels (DeepFashion 176, Market-1501 64). Multiple of the network stride."""
    pose_sigma: float = 6.0
    """Gaussian sigma (pixels) of the 18 pose heatmaps at a 256-pixel-high frame; scaled with height."""
    num_classes: int = 8
    """Number of semantic classes (the 8 canonical classes of docs/design.md)."""
    flip_prob: float = 0.5
    """Probability of a horizontal flip augmentation (keypoints and parsing swapped left/right)."""
    workers: int = 2
    """DataLoader worker processes."""
    pin_memory: bool = True
    """Pin host memory for faster host-to-GPU copies (ignored on CPU)."""
    resample: Literal["bicubic", "bilinear", "area", "lanczos"] = "bicubic"
    """Resampling filter used when an image is resized to the model frame."""
    mix_weights: tuple[float, ...] = ()
    """Training on several datasets (``glocal train --data A --data B``): the probability of drawing a training
    item from each, in ``--data`` order (normalised to sum 1; one weight per dataset, each > 0). Empty: each
    dataset's share of the training pairs. A stage that leaves a dataset out (it lacks what the stage needs)
    renormalises the others' weights."""

    def __post_init__(self) -> None:
        if self.height <= 0 or self.width <= 0:
            raise ValueError(f"frame {self.height}x{self.width} must be positive")
        if self.height % 4 or self.width % 4:
            raise ValueError(f"frame {self.height}x{self.width}: height and width must be multiples of 4")
        if self.pose_sigma <= 0:
            raise ValueError("pose_sigma must be positive")
        if not 0.0 <= self.flip_prob <= 1.0:
            raise ValueError("flip_prob must be in [0, 1]")
        if any(not w > 0 for w in self.mix_weights):
            raise ValueError(f"mix_weights = {list(self.mix_weights)}: every weight must be > 0")

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of the model frame."""
        return (self.height, self.width)

    @property
    def scaled_sigma(self) -> float:
        """Pose-map sigma for this frame (``pose_sigma`` scaled by height / 256)."""
        return self.pose_sigma * self.height / 256.0


@dataclass(frozen=True)
class AnnySynthConfig:
    """SynthPeople on Anny body shapes (``glocal prepare-data synthetic --body anny``).

    The defaults make the dataset; tests switch shading, noise and smoothing off so that warped
    pixels can be compared exactly.
    """

    real_pose_fraction: float = 0.5
    """Share of poses taken from the shipped fits of the DeepFashion test keypoints (the rest come from
    the pose sampler; without the fits every pose is sampled)."""
    closeup: float = 0.15
    """Share of sampled poses framed closer (head to thighs) instead of full length."""
    shading: bool = True
    """Light the surface from its vertex normals (off: unlit colours)."""
    noise: int = 2
    """Sensor noise, uniform in ``-noise .. noise`` grey levels over the whole picture (0: none)."""
    antialias: bool = True
    """Blend a 3x3 average in at part edges (smooth silhouettes and occlusion edges)."""
    depth_tolerance: float = 0.03
    """Visibility test of the pairs' correspondence, metres (``glocal_cli.body.correspond.correspond``)."""
    pairs_per_image: int = 2
    """Pairs (with a correspondence file) whose target each image is: 1 (the next pose is the source) or
    2 (also the pose half-way round). The correspondence is about a third of the rendering cost per pair."""

    def __post_init__(self) -> None:
        if self.pairs_per_image not in (1, 2):
            raise ValueError(f"pairs_per_image {self.pairs_per_image} must be 1 or 2")
        if not 0.0 <= self.real_pose_fraction <= 1.0:
            raise ValueError(f"real_pose_fraction {self.real_pose_fraction} must be in [0, 1]")
        if not 0.0 <= self.closeup <= 1.0:
            raise ValueError(f"closeup {self.closeup} must be in [0, 1]")
        if not 0 <= self.noise <= 32:
            raise ValueError(f"noise {self.noise} must be in 0..32")
        if self.depth_tolerance <= 0:
            raise ValueError("depth_tolerance must be positive")
