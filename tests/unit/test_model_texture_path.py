"""The generator's texture path (warped source features at every decoder scale, the final pixel blend),
external and refined flows, and backward compatibility with weights saved before them. Tiny configs."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from glocal_cli.config import resolve_config
from glocal_cli.errors import InputError
from glocal_cli.losses.focal import semantic_loss
from glocal_cli.models.config import ModelConfig
from glocal_cli.models.flow import resample, warp
from glocal_cli.models.generator import GLocalModel, copy_prior

CFG = resolve_config("tiny")
H, W = CFG.data.height, CFG.data.width
REPO = Path(__file__).resolve().parents[2]
DEFAULT_WEIGHTS = REPO / "weights" / "default"
REFERENCE = Path(__file__).parent / "data" / "default_weights_reference.npz"

TEXTURE = {"off": {"texture_skips": False, "pixel_blend": False},
           "skips": {"texture_skips": True, "pixel_blend": False},
           "blend": {"texture_skips": False, "pixel_blend": True},
           "both": {"texture_skips": True, "pixel_blend": True}}
ABLATIONS = {"full": {}, "w/o GGR": {"use_ggr": False}, "w/o LST": {"use_lst": False}, "w/o FL": {},
             "flow none": {"flow": "none"}, "hybrid flow": {"flow_refine": True}}


def batch(b: int = 2, seed: int = 0, h: int = H, w: int = W) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 8, (b, h, w), generator=g)
    return {"source_image": torch.rand(b, 3, h, w, generator=g) * 2 - 1,
            "source_pose": torch.rand(b, 18, h, w, generator=g),
            "target_pose": torch.rand(b, 18, h, w, generator=g),
            "source_parsing": F.one_hot(labels, 8).permute(0, 3, 1, 2).float()}


def make(**changes: object) -> GLocalModel:
    torch.manual_seed(0)
    return GLocalModel(dataclasses.replace(CFG.model, **changes), H, W)


def _missing_grads(model: torch.nn.Module) -> list[str]:
    return [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or p.grad.abs().sum() == 0)]


@pytest.mark.parametrize("texture", list(TEXTURE))
@pytest.mark.parametrize("ablation", list(ABLATIONS))
def test_every_parameter_gets_a_gradient(ablation: str, texture: str) -> None:
    model = make(**ABLATIONS[ablation], **TEXTURE[texture]).train()
    inputs = batch()
    extra = {}
    if ablation == "hybrid flow":  # refine a given (e.g. 3D body) flow
        extra = {"flow": torch.randn(2, 2, H, W) * 0.05, "visibility": torch.rand(2, 1, H, W)}
    out = model(**inputs, **extra)
    labels = inputs["source_parsing"].argmax(1)
    kind = "ce" if ablation == "w/o FL" else "focal"
    loss = out.image.float().abs().mean() + semantic_loss(out.target_parsing_logits, labels, kind)
    if model.flow is not None:
        loss = loss + out.visibility.mean() + sum(f.square().mean() for f in out.flow)
    loss.backward()
    missing = _missing_grads(model)
    if ablation == "flow none":  # all visible: the occluded (graph) branch has nothing to do
        assert missing and all(".ggr.graph" in n for n in missing)
    else:
        assert missing == []
    assert (model.generator.decoder.skips is not None) == TEXTURE[texture]["texture_skips"]
    assert (model.generator.blend is not None) == TEXTURE[texture]["pixel_blend"]


@pytest.mark.parametrize("texture", ["off", "both"])
def test_inpaint_reaches_every_parameter_and_keeps_the_known_pixels(texture: str) -> None:
    model = make(mode="inpaint", flow="none", **TEXTURE[texture]).train()
    inputs = batch()
    inputs.pop("target_pose")
    mask = torch.zeros(2, 1, H, W)
    mask[:, :, 8:20, 4:16] = 1
    out = model(**inputs, mask=mask, target_parsing=inputs["source_parsing"])
    out.image.abs().mean().backward()
    assert [n for n in _missing_grads(model) if not n.startswith("semantic.")] == []
    if texture == "both":  # at init the blend copies every known pixel and nothing of the hole
        prior = out.features.copy_prior
        assert prior[mask.bool()].abs().max() < 1e-5 and (prior[~mask.bool()] - 1).abs().max() < 1e-5
        known = (1 - mask).bool().expand_as(out.image)
        assert torch.allclose(out.image[known], inputs["source_image"][known], atol=2e-3)


def test_copy_prior_is_visibility_times_parsing_agreement() -> None:
    src = F.one_hot(torch.tensor([[[0, 1], [2, 3]]]), 8).permute(0, 3, 1, 2).float()  # (1, 8, 2, 2)
    tgt = src.clone()
    tgt[:, :, 0, 0] = F.one_hot(torch.tensor(5), 8).float()  # disagrees with the source there
    vis = torch.tensor([[[[1.0, 0.5], [0.0, 1.0]]]])
    prior = copy_prior(vis, torch.zeros(1, 2, 1, 1), src, tgt)
    assert torch.equal(prior, torch.tensor([[[[0.0, 0.5], [0.0, 1.0]]]]))
    soft = tgt * 0.25 + src * 0.75  # soft target parsing: the probability of the source's class
    assert torch.allclose(copy_prior(torch.ones(1, 1, 2, 2), torch.zeros(1, 2, 2, 2), src, soft)[0, 0, 0, 0],
                          torch.tensor(0.75))


def test_blend_at_init_returns_the_source_where_it_is_visible_and_agrees() -> None:
    """Identity flow, visibility 1: the output is the source where the parsings agree and the decoder's image
    where they do not; the blend formula holds exactly."""
    model = make(**TEXTURE["both"]).eval()
    inputs = batch()
    target = inputs["source_parsing"].clone()
    target[:, :, :8, :] = F.one_hot(inputs["source_parsing"][:, :, :8].argmax(1).add(1) % 8, 8).permute(0, 3, 1, 2)
    with torch.no_grad():
        out = model(**inputs, target_parsing=target, flow=torch.zeros(2, 2, H, W), visibility=torch.ones(2, 1, H, W))
    f = out.features
    assert torch.allclose(f.copy_prior[:, :, 8:], torch.ones(1), atol=1e-5)
    assert torch.allclose(f.copy_prior[:, :, :8], torch.zeros(1), atol=1e-5)
    m = f.blend_mask
    assert torch.allclose(out.image, m * out.warped_source + (1 - m) * f.decoded, atol=1e-6)  # residual 0 at init
    assert torch.allclose(out.warped_source, inputs["source_image"], atol=1e-5)
    src, gen = inputs["source_image"], f.decoded
    assert (out.image - src)[:, :, 8:].abs().max() < 2e-3  # copied: m = 1 - 1e-3
    assert (out.image - gen)[:, :, :8].abs().max() < 2e-3  # generated
    assert (src - gen)[:, :, :8].abs().max() > 0.1  # the two differ, so the test can fail


def test_blend_copies_the_source_along_a_given_flow() -> None:
    model = make(**TEXTURE["both"]).eval()
    inputs = batch(1)
    flow = torch.zeros(1, 2, H, W)
    flow[:, 0] = 2 * 3 / W  # every target pixel samples the source 3 pixels to its right
    target = warp(inputs["source_parsing"], flow, padding_mode="zeros")
    target[:, 0, :, -3:] = 1  # the columns the source does not cover: background
    with torch.no_grad():
        out = model(**inputs, target_parsing=target, flow=flow, visibility=torch.ones(1, 1, H, W))
    shifted = inputs["source_image"][..., 3:]
    assert torch.allclose(out.warped_source[..., :-3], shifted, atol=1e-5)
    copied = out.features.copy_prior > 0.99
    assert copied[..., :-3].all() and not copied[..., -3:].any()
    assert (out.image[..., :-3] - shifted).abs().max() < 2e-3


def test_visible_scales_follow_the_source_and_occluded_ones_the_bottleneck() -> None:
    """Skips at init: with the gates at 1 the decoded image hardly depends on the bottleneck (GGR/LST); at 0 it
    does (the paper's generation)."""
    model = make(**TEXTURE["skips"]).eval()
    inputs = batch()
    other_pose = batch(seed=5)["target_pose"]
    changes = {}
    for vis in (1.0, 0.0):
        extra = {"target_parsing": inputs["source_parsing"], "flow": torch.zeros(2, 2, H, W),
                 "visibility": torch.full((2, 1, H, W), vis)}
        with torch.no_grad():
            a = model(**inputs, **extra)
            b = model(**{**inputs, "target_pose": other_pose}, **extra)
        assert len(a.features.skip_gates) == CFG.model.num_downsample
        assert all(torch.allclose(g, torch.full_like(g, vis), atol=1e-3) for g in a.features.skip_gates)
        assert not torch.allclose(a.features.generated, b.features.generated)
        changes[vis] = (a.image - b.image).abs().max().item()
    assert changes[0.0] > 1e-3 and changes[1.0] < 0.05 * changes[0.0], changes


def test_blend_output_stays_in_range_with_a_large_residual() -> None:
    model = make(**TEXTURE["both"]).eval()
    with torch.no_grad():
        model.generator.blend.head.bias.copy_(torch.tensor([0.0, 30.0, -30.0, 5.0]))
        out = model(**batch())
    assert out.image.min() >= -1 and out.image.max() <= 1
    assert not torch.allclose(out.image, out.features.blend_mask * out.warped_source
                              + (1 - out.features.blend_mask) * out.features.decoded)


# -- external and refined flows --------------------------------------------------------------------------


def test_given_flow_and_visibility_replace_the_estimator() -> None:
    model = make().eval()
    inputs = batch()
    flow = F.avg_pool2d(torch.randn(2, 2, H, W) * 0.2, 3, 1, 1)
    vis = torch.rand(2, 1, H, W)
    with torch.no_grad():
        out = model(**inputs, flow=flow, visibility=vis)
        est = model(**inputs)
    assert [tuple(f.shape[-2:]) for f in out.flow] == model.pyramid_sizes() == [tuple(f.shape[-2:]) for f in est.flow]
    assert torch.allclose(out.flow[0], F.adaptive_avg_pool2d(flow, out.flow[0].shape[-2:]))
    assert out.visibility is vis
    assert torch.allclose(out.warped_source, warp(inputs["source_image"], flow))
    assert not torch.allclose(out.image, est.image)
    with torch.no_grad():  # without a visibility, everything counts as visible
        ones = model(**inputs, flow=flow)
    assert torch.equal(ones.visibility, torch.ones(2, 1, H, W))


def test_given_flow_works_without_an_estimator() -> None:
    model = make(flow="none").eval()
    flow = torch.zeros(2, 2, H // 2, W // 2)
    flow[:, 1] = 0.25
    with torch.no_grad():
        out = model(**batch(), flow=flow)
    assert torch.allclose(out.flow[0], torch.full_like(out.flow[0], 0.25).index_fill(1, torch.tensor([0]), 0))


def test_flow_arguments_are_checked() -> None:
    model = make()
    inputs = batch()
    with pytest.raises(InputError, match=r"flow: expected shape \(B, 2, h, w\)"):
        model(**inputs, flow=torch.zeros(2, 3, H, W))
    with pytest.raises(InputError, match="visibility: expected shape"):
        model(**inputs, flow=torch.zeros(2, 2, H, W), visibility=torch.zeros(1, 1, H, W))
    with pytest.raises(InputError, match="visibility: given without a flow"):
        model(**inputs, visibility=torch.ones(2, 1, H, W))
    bad = torch.zeros(2, 2, 4, 4)
    bad[0, 0, 1, 1] = float("inf")
    with pytest.raises(InputError, match="flow: contains NaN"):
        model(**inputs, flow=bad)
    inputs.pop("target_pose")
    with pytest.raises(InputError, match="only used in transfer mode"):
        model(**inputs, mask=torch.zeros(2, 1, H, W), mode="inpaint", flow=torch.zeros(2, 2, H, W))


def test_hybrid_flow_starts_at_the_given_flow_and_refines_it() -> None:
    model = make(flow_refine=True).eval()
    inputs = batch()
    flow = F.avg_pool2d(torch.randn(2, 2, H, W) * 0.2, 3, 1, 1)
    vis = torch.rand(2, 1, H, W) * 0.8 + 0.1
    with torch.no_grad():
        out = model(**inputs, flow=flow, visibility=vis)
        plain = model(**inputs)
    for level in out.flow:  # untrained residual heads are ~0: the given flow at each level
        assert torch.allclose(level, resample(flow, level.shape[-2:]), atol=0.05)
    assert torch.allclose(out.visibility, resample(vis, out.visibility.shape[-2:]), atol=0.05)
    residual = out.flow[-1] - resample(flow, out.flow[-1].shape[-2:])
    assert residual.abs().max() > 0  # the estimator adds its own residual
    texture = flow + resample(residual, (H, W))  # the given flow keeps its own resolution
    assert torch.allclose(out.warped_source, warp(inputs["source_image"], texture), atol=1e-5)
    assert all(f.abs().max() < 0.05 for f in plain.flow)  # nothing given: starts at the identity, like the plain one
    assert torch.allclose(plain.visibility, torch.full_like(plain.visibility, 0.5), atol=0.05)
    with torch.no_grad():  # the given flow reaches the estimator's input, not only its output
        model.flow.flow_heads[-1].weight.normal_(std=0.1)
        a = model(**inputs, flow=flow, visibility=vis).flow[-1] - resample(flow, out.flow[-1].shape[-2:])
        b = model(**inputs, flow=flow * 0, visibility=vis).flow[-1]
    assert not torch.allclose(a, b, atol=1e-4)
    with pytest.raises(ValueError, match="flow_refine needs flow"):
        ModelConfig(flow="none", flow_refine=True)


def test_bf16_autocast_texture_path_and_hybrid_flow() -> None:
    model = make(flow_refine=True, **TEXTURE["both"]).eval().to(memory_format=torch.channels_last)
    inputs = {k: v.contiguous(memory_format=torch.channels_last) for k, v in batch().items()}
    flow = torch.randn(2, 2, H, W) * 0.05
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(**inputs, flow=flow, visibility=torch.rand(2, 1, H, W))
    assert out.image.dtype == torch.float32 and torch.isfinite(out.image).all()
    assert out.image.min() >= -1 and out.image.max() <= 1
    model.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(**inputs, flow=flow)
    out.image.float().mean().backward()
    assert model.generator.blend.head.weight.grad is not None


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_texture_path_has_no_host_sync() -> None:
    model = make(flow_refine=True, **TEXTURE["both"]).cuda().train()
    inputs = {k: v.cuda() for k, v in batch().items()}
    flow = torch.randn(2, 2, H, W, device="cuda") * 0.05
    model(**inputs, flow=flow, check_finite=False)  # warm-up (lazy initialisation may sync)
    torch.cuda.set_sync_debug_mode("error")
    try:
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = model(**inputs, flow=flow, check_finite=False)
        out.image.float().mean().backward()
    finally:
        torch.cuda.set_sync_debug_mode("default")


# -- backward compatibility --------------------------------------------------------------------------------


def test_defaults_build_the_architecture_of_old_weights() -> None:
    cfg = ModelConfig()
    assert not (cfg.texture_skips or cfg.pixel_blend or cfg.flow_refine)
    old = GLocalModel(dataclasses.replace(CFG.model, **TEXTURE["off"]), H, W).state_dict()
    new = make(**TEXTURE["both"]).state_dict()
    assert set(old) < set(new)
    assert all(old[k].shape == new[k].shape for k in old)  # only additions


def test_weights_saved_without_the_new_keys_load_and_match(tmp_path: Path) -> None:
    model = make(**TEXTURE["off"]).eval()
    folder = model.save_pretrained(tmp_path / "old")
    meta = json.loads((folder / "config.json").read_text())
    for key in ("texture_skips", "pixel_blend", "flow_refine"):
        del meta["model"][key]  # as written by glocal 0.1
    (folder / "config.json").write_text(json.dumps(meta))
    loaded = GLocalModel.from_pretrained(folder).eval()
    assert loaded.generator.blend is None and loaded.generator.decoder.skips is None
    inputs = batch()
    with torch.no_grad():
        assert torch.equal(loaded(**inputs).image, model(**inputs).image)


def _reference_inputs(h: int, w: int) -> dict[str, torch.Tensor]:
    """The inputs the reference output was computed on (seed 1234, the weights' frame; the order matters)."""
    g = torch.Generator().manual_seed(1234)
    labels = torch.randint(0, 8, (1, h, w), generator=g)
    return {"source_image": torch.rand(1, 3, h, w, generator=g) * 2 - 1,
            "source_pose": torch.rand(1, 18, h, w, generator=g),
            "target_pose": torch.rand(1, 18, h, w, generator=g),
            "source_parsing": F.one_hot(labels, 8).permute(0, 3, 1, 2).float()}


def test_shipped_default_weights_load_and_reproduce_their_output() -> None:
    """weights/default loads strictly and gives the output recorded for it (the v2 weights, 128x88, with the
    texture path): a change of the model code that changes what the shipped weights compute fails here.

    The reference belongs to one generator file: when weights/default is replaced, re-record it
    (``tests/unit/data/default_weights_reference.npz``: the output on :func:`_reference_inputs` and the
    generator's sha256); until then only the load-and-run part runs.
    """
    if not (DEFAULT_WEIGHTS / "config.json").is_file():
        pytest.skip("weights/default is absent")
    model = GLocalModel.from_pretrained(DEFAULT_WEIGHTS).eval()
    with torch.no_grad():
        image = model(**_reference_inputs(model.height, model.width)).image
    assert image.shape == (1, 3, model.height, model.width) and torch.isfinite(image).all()
    ref = np.load(REFERENCE)
    sha = hashlib.sha256((DEFAULT_WEIGHTS / "generator" / "model.safetensors").read_bytes()).hexdigest()
    if sha != str(ref["generator_sha256"]):
        pytest.skip("weights/default was replaced since the reference output was recorded (loads and runs)")
    diff = (image - torch.from_numpy(ref["image"])).abs().max().item()
    assert diff < 1e-4, f"weights/default no longer reproduces its recorded output (max difference {diff:.4f})"
