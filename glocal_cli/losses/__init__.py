"""Losses of GLocal: focal (Eq. 1), L1 (Eq. 9), VGG-19 perceptual (Eq. 10), adversarial (Eq. 11), flow."""

from glocal_cli.losses.adversarial import AdversarialLoss
from glocal_cli.losses.flow import flow_smoothness_loss, sampling_correctness_loss, supervised_flow_loss
from glocal_cli.losses.focal import FocalLoss, semantic_loss
from glocal_cli.losses.perceptual import PerceptualLoss, VGG19Features

__all__ = [
    "AdversarialLoss",
    "FocalLoss",
    "PerceptualLoss",
    "VGG19Features",
    "flow_smoothness_loss",
    "sampling_correctness_loss",
    "semantic_loss",
    "supervised_flow_loss",
]
