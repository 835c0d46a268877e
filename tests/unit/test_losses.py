"""Losses: focal (Eq. 1), perceptual (Eq. 10), adversarial (Eq. 11), flow losses."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from glocal_cli.config import resolve_config
from glocal_cli.errors import WeightsError
from glocal_cli.losses import (
    AdversarialLoss,
    FocalLoss,
    PerceptualLoss,
    flow_smoothness_loss,
    sampling_correctness_loss,
    semantic_loss,
    supervised_flow_loss,
)
from glocal_cli.losses import perceptual as perceptual_mod


def test_focal_equals_cross_entropy_at_eta_zero() -> None:
    torch.manual_seed(0)
    logits = torch.randn(2, 8, 5, 4)
    labels = torch.randint(0, 8, (2, 5, 4))
    assert torch.allclose(FocalLoss(0.0)(logits, labels), F.cross_entropy(logits, labels), atol=1e-6)
    onehot = F.one_hot(labels, 8).permute(0, 3, 1, 2).float()
    assert torch.allclose(FocalLoss(0.0)(logits, onehot), F.cross_entropy(logits, labels), atol=1e-6)
    assert torch.allclose(semantic_loss(logits, labels, "ce"), F.cross_entropy(logits, labels))


def test_focal_down_weights_confident_pixels() -> None:
    labels = torch.zeros(1, 1, 2, dtype=torch.long)
    logits = torch.zeros(1, 8, 1, 2)
    logits[0, 0, 0, 0] = 6.0  # confident and correct
    logits[0, 3, 0, 1] = 2.0  # wrong
    per_pixel_ce = F.cross_entropy(logits, labels, reduction="none")[0, 0]
    focal = [FocalLoss(2.0)(logits[..., i:i + 1], labels[..., i:i + 1]) for i in range(2)]
    ratio_easy, ratio_hard = focal[0] / per_pixel_ce[0], focal[1] / per_pixel_ce[1]
    assert ratio_easy < 0.01 and ratio_hard > 0.5 and ratio_easy < ratio_hard
    assert FocalLoss(2.0)(logits, labels) < F.cross_entropy(logits, labels)


def test_focal_binary_form_is_eq1_per_class() -> None:
    torch.manual_seed(0)
    logits = torch.randn(1, 8, 3, 3)
    labels = torch.randint(0, 8, (1, 3, 3))
    p = logits.softmax(1)
    onehot = F.one_hot(labels, 8).permute(0, 3, 1, 2).float()
    bce = F.binary_cross_entropy(p, onehot, reduction="none").sum(1).mean()
    assert torch.allclose(FocalLoss(0.0, "binary")(logits, labels), bce, atol=1e-5)
    pt = torch.where(onehot > 0, p, 1 - p)
    eq1 = (-(1 - pt) ** 2 * pt.log()).sum(1).mean()
    assert torch.allclose(FocalLoss(2.0, "binary")(logits, labels), eq1, atol=1e-5)


@pytest.mark.parametrize("kind", ["log", "lsgan", "hinge"])
def test_adversarial_losses_prefer_the_right_answer(kind: str) -> None:
    adv = AdversarialLoss(kind)
    good, bad = torch.full((2, 1, 3, 3), 3.0), torch.full((2, 1, 3, 3), -3.0)
    assert adv.discriminator(good, bad) < adv.discriminator(bad, good)
    assert adv.generator(good) < adv.generator(bad)


def test_adversarial_log_form_is_eq11() -> None:
    real, fake = torch.randn(4, 1, 2, 2), torch.randn(4, 1, 2, 2)
    eq11 = torch.log(torch.sigmoid(real)).mean() + torch.log(1 - torch.sigmoid(fake)).mean()
    assert torch.allclose(AdversarialLoss("log").discriminator(real, fake), -eq11, atol=1e-5)
    with pytest.raises(ValueError):
        AdversarialLoss("wgan")


def _no_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(perceptual_mod, "_hub_cache_file", lambda: tmp_path / "missing-vgg19.pth")


def test_perceptual_refuses_without_weights(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _no_cache(monkeypatch, tmp_path)
    with pytest.raises(WeightsError, match="VGG-19"):
        PerceptualLoss(("relu1_1",), download=False, allow_random=False)
    with pytest.raises(WeightsError, match="not found"):
        PerceptualLoss(("relu1_1",), weights_path=str(tmp_path / "nope.pth"))


def test_perceptual_with_random_vgg_and_local_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _no_cache(monkeypatch, tmp_path)
    cfg = resolve_config("tiny").loss
    torch.manual_seed(0)
    loss = PerceptualLoss.from_config(cfg)
    assert not loss.vgg.pretrained
    x = torch.rand(2, 3, 32, 24) * 2 - 1
    y = (torch.rand(2, 3, 32, 24) * 2 - 1).requires_grad_(True)
    assert loss(x, x) == 0
    value = loss(y, x)
    value.backward()
    assert value > 0 and y.grad.abs().sum() > 0
    assert all(not p.requires_grad for p in loss.vgg.parameters())
    # a local weights file (torchvision key names) is loaded strictly
    from torchvision.models import vgg19

    path = tmp_path / "vgg19.pth"
    torch.save(vgg19(weights=None).state_dict(), path)
    local = PerceptualLoss(("relu1_1",), weights_path=str(path))
    assert local.vgg.pretrained
    torch.save({"bogus": torch.zeros(1)}, path)
    with pytest.raises(WeightsError, match="not a torchvision VGG-19"):
        PerceptualLoss(("relu1_1",), weights_path=str(path))


def test_sampling_correctness_is_zero_for_the_true_flow() -> None:
    from glocal_cli.models.flow import warp

    torch.manual_seed(0)
    source = torch.randn(1, 8, 6, 6)
    flow = torch.zeros(1, 2, 6, 6)
    flow[:, 0] = 2 / 6  # sample one pixel to the right
    target = warp(source, flow)
    good = sampling_correctness_loss(source, target, flow)
    bad = sampling_correctness_loss(source, target, torch.zeros_like(flow))
    assert good < 1e-5 < bad


def test_flow_smoothness_zero_for_affine_flow() -> None:
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, 8), torch.linspace(-1, 1, 6), indexing="ij")
    affine = torch.stack([0.3 * xs + 0.1 * ys + 0.2, -0.2 * xs + 0.05])[None]
    assert flow_smoothness_loss(affine) < 1e-6
    assert flow_smoothness_loss(torch.randn(1, 2, 8, 6)) > 0.1


def test_supervised_flow_loss() -> None:
    gt = torch.randn(2, 2, 8, 6) * 0.1
    vis = (torch.rand(2, 1, 8, 6) > 0.5).float()
    perfect = supervised_flow_loss(gt, vis.clamp(1e-4, 1 - 1e-4), gt, vis)
    assert perfect < 1e-2
    worse = supervised_flow_loss(gt + 0.5, torch.full_like(vis, 0.5), gt, vis)
    assert worse > perfect
    # occluded pixels carry no flow supervision
    noisy = gt + (1 - vis) * 3
    assert supervised_flow_loss(noisy, vis.clamp(1e-4, 1 - 1e-4), gt, vis, w_visibility=0.0) < 1e-6
