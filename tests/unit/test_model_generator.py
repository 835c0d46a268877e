"""The GLocal model end to end at the tiny preset: both modes, every ablation, input checks, autocast."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from glocal_cli.config import resolve_config
from glocal_cli.errors import ConfigError, InputError
from glocal_cli.models.discriminator import Discriminator
from glocal_cli.models.flow import FlowEstimator, identity_flow, warp
from glocal_cli.models.generator import GLocalModel
from glocal_cli.models.semantic import SemanticPredictor

CFG = resolve_config("tiny")
H, W = CFG.data.height, CFG.data.width


def batch(b: int = 2, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 8, (b, H, W), generator=g)
    parsing = F.one_hot(labels, 8).permute(0, 3, 1, 2).float()
    return {
        "source_image": torch.rand(b, 3, H, W, generator=g) * 2 - 1,
        "source_pose": torch.rand(b, 18, H, W, generator=g),
        "target_pose": torch.rand(b, 18, H, W, generator=g),
        "source_parsing": parsing,
    }


def make(**changes: object) -> GLocalModel:
    torch.manual_seed(0)
    return GLocalModel(dataclasses.replace(CFG.model, **changes), H, W)


VARIANTS = {
    "full": {},
    "w/o GGR": {"use_ggr": False},
    "w/o LST": {"use_lst": False},
    "flow none": {"flow": "none"},
    "instance norm, LST pooled": {"ggr_norm": "instance", "lst_pool": 2, "ggr_centre": "face"},
}


def _missing_grads(model: torch.nn.Module) -> list[str]:
    return [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or p.grad.abs().sum() == 0)]


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_transfer_forward_backward_reaches_every_parameter(variant: str) -> None:
    model = make(**VARIANTS[variant]).train()
    out = model(**batch())
    assert out.image.shape == (2, 3, H, W)
    assert out.image.min() >= -1 and out.image.max() <= 1
    assert out.target_parsing_logits is not None and out.target_parsing_logits.shape == (2, 8, H, W)
    loss = out.image.abs().mean() + out.warped_source.abs().mean() + out.target_parsing_logits.square().mean()
    if model.flow is not None:
        loss = loss + out.visibility.mean() + sum(f.square().mean() for f in out.flow)
    loss.backward()
    if variant == "flow none":  # all visible: the occluded (graph) branch has nothing to do
        missing = _missing_grads(model)
        assert all(".ggr.graph" in n for n in missing)
    else:
        assert _missing_grads(model) == []
    if variant == "w/o LST":
        assert model.generator.lst is None and out.features.transport_plan is None
        assert out.features.generated is out.features.modulated


@pytest.mark.parametrize("variant", ["full", "w/o GGR", "w/o LST"])
def test_inpaint_forward_backward(variant: str) -> None:
    model = make(mode="inpaint", flow="none", **VARIANTS[variant]).train()
    assert model.flow is None
    inputs = batch()
    inputs.pop("target_pose")
    mask = torch.zeros(2, 1, H, W)
    mask[:, :, 8:20, 4:16] = 1
    out = model(**inputs, mask=mask)
    assert out.image.min() >= -1 and out.image.max() <= 1
    assert torch.equal(out.visibility, 1 - mask)
    assert torch.all(out.source_image[:, :, 8:20, 4:16] == 0)
    assert all(torch.all(f == 0) for f in out.flow)
    (out.image.abs().mean() + out.target_parsing_logits.square().mean()).backward()
    assert _missing_grads(model) == []


def test_ablations_are_real_variants() -> None:
    inputs = batch()
    full = make().eval()
    images = {}
    for name, changes in [("full", {}), ("w/o GGR", {"use_ggr": False}), ("w/o LST", {"use_lst": False})]:
        model = make(**changes).eval()
        model.load_state_dict(full.state_dict(), strict=False)
        with torch.no_grad():
            images[name] = model(**inputs).image
    assert not torch.allclose(images["full"], images["w/o GGR"])
    assert not torch.allclose(images["full"], images["w/o LST"])
    n_full = sum(p.numel() for p in full.parameters())
    assert sum(p.numel() for p in make(use_ggr=False).parameters()) < n_full
    assert sum(p.numel() for p in make(use_lst=False).parameters()) < n_full


def test_given_target_parsing_skips_semantic_prediction() -> None:
    model = make().eval()
    inputs = batch()
    with torch.no_grad():
        out = model(**inputs, target_parsing=inputs["source_parsing"])
    assert out.target_parsing_logits is None and torch.equal(out.target_parsing, inputs["source_parsing"])


def test_estimate_source_parsing_is_one_hot() -> None:
    model = make().eval()
    inputs = batch()
    parsing = model.estimate_source_parsing(inputs["source_image"], inputs["source_pose"])
    assert parsing.shape == (2, 8, H, W) and torch.all(parsing.sum(1) == 1)
    with torch.no_grad():
        out = model(inputs["source_image"], inputs["source_pose"], inputs["target_pose"])
    assert out.image.shape == (2, 3, H, W)


def test_batch_items_are_independent_in_eval() -> None:
    model = make().eval()
    inputs = batch(3)
    with torch.no_grad():
        full = model(**inputs).image
        one = model(**{k: v[1:2] for k, v in inputs.items()}).image
    assert torch.allclose(full[1:2], one, atol=1e-5)


@pytest.mark.parametrize(
    ("key", "shape", "message"),
    [
        ("source_image", (2, 4, H, W), "expected shape (B, 3, H, W)"),
        ("source_pose", (2, 17, H, W), "expected shape (B, 18, H, W)"),
        ("source_parsing", (2, 20, H, W), "expected shape (B, 8, H, W)"),
        ("target_pose", (2, 18, H, W - 4), "(B, H, W) = (2, 32, 24)"),
    ],
)
def test_wrong_shapes_give_one_clear_error(key: str, shape: tuple[int, ...], message: str) -> None:
    inputs = batch()
    inputs[key] = torch.zeros(shape)
    with pytest.raises(InputError, match=key) as err:
        make()(**inputs)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_size_not_multiple_of_stride_is_rejected() -> None:
    model = make()
    inputs = {k: F.interpolate(v, size=(H + 2, W)) for k, v in batch().items()}
    with pytest.raises(InputError, match="multiples of the network stride 4"):
        model(**inputs)
    with pytest.raises(ConfigError, match="network stride"):
        GLocalModel(CFG.model, 30, 24)


def test_nan_inputs_are_rejected() -> None:
    inputs = batch()
    inputs["target_pose"][0, 3, 2, 2] = float("nan")
    with pytest.raises(InputError, match="target_pose: contains NaN"):
        make()(**inputs)


def test_mode_argument_checks() -> None:
    model = make()
    inputs = batch()
    with pytest.raises(InputError, match="mask"):
        model(**inputs, mask=torch.zeros(2, 1, H, W))
    with pytest.raises(InputError, match="mask"):
        model(**inputs, mode="inpaint")


def test_bf16_autocast_and_channels_last() -> None:
    model = make().eval().to(memory_format=torch.channels_last)
    inputs = {k: v.contiguous(memory_format=torch.channels_last) for k, v in batch().items()}
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(**inputs)
    assert torch.isfinite(out.image.float()).all() and out.features.transport_plan.dtype == torch.float32


def test_warp_identity_and_shift() -> None:
    x = torch.randn(1, 3, 8, 6)
    assert torch.allclose(warp(x, identity_flow(1, 4, 3, x)), x, atol=1e-6)
    flow = torch.zeros(1, 2, 8, 6)
    flow[:, 0] = 2 / 6  # one pixel to the right, in normalised units
    shifted = warp(x, flow)
    assert torch.allclose(shifted[..., :-1], x[..., 1:], atol=1e-5)


def test_flow_estimator_pyramid_and_identity_at_init() -> None:
    net = FlowEstimator(CFG.model)
    b = batch()
    flows, vis = net(b["source_image"], b["source_pose"], b["target_pose"])
    assert [tuple(f.shape) for f in flows] == [(2, 2, H // 4, W // 4), (2, 2, H // 2, W // 2)]
    assert vis.shape == (2, 1, H // 2, W // 2) and vis.min() > 0 and vis.max() < 1
    assert flows[-1].abs().max() < 0.1


def test_semantic_unet_handles_any_frame() -> None:
    net = SemanticPredictor(CFG.model)
    out = net(torch.zeros(1, 3, 20, 12), torch.zeros(1, 18, 20, 12), torch.zeros(1, 18, 20, 12))
    assert out.shape == (1, 8, 20, 12)


def test_discriminator_spectral_norm_and_patch_logits() -> None:
    disc = Discriminator(CFG.model)
    b = batch()
    logits = disc(b["source_image"], b["source_image"], b["target_pose"])
    assert logits.dim() == 4 and logits.shape[:2] == (2, 1)
    assert any("parametrizations.weight" in n for n, _ in disc.named_parameters())
    logits.mean().backward()
    assert all(p.grad is not None for p in disc.parameters())
