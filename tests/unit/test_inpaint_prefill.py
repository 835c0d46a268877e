"""Inpainting that refines a classical fill (``model.inpaint_prefill``): the Telea prefill, the model starting
from it, the data loader's prefill, and the full-resolution composite. Tiny configs, random weights."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from glocal_cli.config import resolve_config
from glocal_cli.data.images import FrameTransform, fit_to_frame
from glocal_cli.data.prefill import prefill_tensor, telea_fill
from glocal_cli.infer.composite import inpaint_composite
from glocal_cli.models.generator import GLocalModel

cv2 = pytest.importorskip("cv2")
CFG = resolve_config("tiny")
H, W = CFG.data.height, CFG.data.width


def _photo(h: int = 64, w: int = 48, seed: int = 0) -> np.ndarray:
    """A smooth colour ramp with a stripe: something a fill can continue."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([yy / h * 200 + 20, xx / w * 150 + 50, np.full_like(xx, 90)], -1)
    img[:, w // 2 - 2: w // 2 + 2] = [240, 30, 30]
    rng = np.random.default_rng(seed)
    return np.clip(img + rng.normal(0, 2, img.shape), 0, 255).astype(np.uint8)


def test_telea_fill_is_opencv_telea_and_keeps_known_pixels() -> None:
    photo = _photo()
    hole = np.zeros(photo.shape[:2], bool)
    hole[20:40, 10:30] = True
    out = telea_fill(photo, hole)
    ref = cv2.inpaint(photo, hole.astype(np.uint8) * 255, 5.0, cv2.INPAINT_TELEA)
    assert np.array_equal(out, ref)
    assert np.array_equal(out[~hole], photo[~hole])
    # the hole's own content is never read: the filled values do not depend on it
    other = photo.copy()
    other[hole] = 0
    assert np.array_equal(telea_fill(other, hole), out)
    # the fill continues the surroundings: closer to the truth than the known pixels' mean colour
    mean_fill = photo[~hole].mean(0)
    err = np.abs(out[hole].astype(float) - photo[hole]).mean()
    assert err < 0.8 * np.abs(mean_fill - photo[hole]).mean()
    assert telea_fill(photo, np.zeros_like(hole)).tolist() == photo.tolist()
    assert (telea_fill(photo, np.ones_like(hole)) == 128).all()
    with pytest.raises(ValueError, match="hole is"):
        telea_fill(photo, hole[:10])


def test_prefill_tensor_matches_the_numpy_fill_and_keeps_known_values() -> None:
    photo = _photo()
    hole = np.zeros(photo.shape[:2], bool)
    hole[5:25, 20:40] = True
    image = torch.from_numpy(photo).permute(2, 0, 1).float() / 127.5 - 1
    image = image + 1e-4  # known values are kept exactly, not re-quantised
    mask = torch.from_numpy(hole)[None].float()
    out = prefill_tensor(image, mask)
    assert out.shape == image.shape
    assert torch.equal(out[:, ~torch.from_numpy(hole)], image[:, ~torch.from_numpy(hole)])
    ref = telea_fill(photo, hole)
    got = ((out.permute(1, 2, 0).numpy() + 1) * 127.5).round()
    assert np.abs(got[hole] - ref[hole]).max() <= 1
    batch = prefill_tensor(image[None].repeat(2, 1, 1, 1), mask[None].repeat(2, 1, 1, 1))
    assert torch.equal(batch[0], out) and torch.equal(batch[1], out)


def _inputs(b: int = 2, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 8, (b, H, W), generator=g)
    return {"source_image": torch.rand(b, 3, H, W, generator=g) * 2 - 1,
            "source_pose": torch.rand(b, 18, H, W, generator=g),
            "source_parsing": F.one_hot(labels, 8).permute(0, 3, 1, 2).float()}


def test_prefilled_model_starts_from_the_fill_and_never_sees_the_hole() -> None:
    torch.manual_seed(0)
    cfg = dataclasses.replace(CFG.model, mode="inpaint", flow="none", texture_skips=True, pixel_blend=True,
                              inpaint_prefill=True)
    model = GLocalModel(cfg, H, W).eval()
    x = _inputs()
    mask = torch.zeros(2, 1, H, W)
    mask[:, :, 8:20, 4:16] = 1
    with torch.no_grad():
        out = model(x["source_image"], x["source_pose"], None, x["source_parsing"], x["source_parsing"], mask,
                    mode="inpaint")
        filled = prefill_tensor(x["source_image"], mask)
        assert torch.allclose(out.source_image, filled)
        # at init the blend copies the prefilled picture everywhere (m = 0.999), the hole included
        assert (out.image - filled).abs().max() < 5e-3
        changed = x["source_image"].clone()
        changed[mask.expand_as(changed).bool()] = 0.77  # other hole content: same result
        again = model(changed, x["source_pose"], None, x["source_parsing"], x["source_parsing"], mask,
                      mode="inpaint")
        assert torch.equal(again.image, out.image)
        given = model(x["source_image"], x["source_pose"], None, x["source_parsing"], x["source_parsing"], mask,
                      mode="inpaint", prefilled=filled)  # what the data loader hands over
        assert torch.allclose(given.image, out.image, atol=1e-6)
    # without the option the hole is zeroed and the blend does not copy into it
    plain = GLocalModel(dataclasses.replace(cfg, inpaint_prefill=False), H, W).eval()
    plain.load_state_dict(model.state_dict())
    with torch.no_grad():
        zero = plain(x["source_image"], x["source_pose"], None, x["source_parsing"], x["source_parsing"], mask,
                     mode="inpaint")
    assert (zero.source_image[mask.expand_as(zero.source_image).bool()] == 0).all()


def test_training_stage_data_carries_the_prefill() -> None:
    from glocal_cli.train.stages import InpaintStage

    class _Ctx:  # the stage reads only the config and whether the data has parsing
        cfg = dataclasses.replace(CFG, model=dataclasses.replace(CFG.model, inpaint_prefill=True))
        has_parsing = False

    stage = InpaintStage.__new__(InpaintStage)
    stage.ctx, stage.cfg = _Ctx(), _Ctx.cfg
    opts = stage.dataset_options()
    assert opts == {"mask_kind": "irregular", "semantic_mask_prob": CFG.train.inpaint_semantic_prob, "prefill": True}


def test_composite_redoes_the_fill_at_the_photo_resolution() -> None:
    photo = _photo(96, 72)
    hole = np.zeros(photo.shape[:2], bool)
    hole[30:60, 20:50] = True
    frame, t = fit_to_frame(photo, 32, 24, margin=0.0)
    assert isinstance(t, FrameTransform)
    frame_hole = cv2.resize(hole.astype(np.uint8), (24, 32), interpolation=cv2.INTER_NEAREST).astype(bool)
    prefill = telea_fill(frame, frame_hole)
    # the model left the fill as it is: the result is the photo's own Telea fill, every known pixel kept
    out, notes = inpaint_composite(photo, hole, prefill, t, 2.0, frame_prefill=prefill)
    assert notes == [] and np.array_equal(out[~hole], photo[~hole])
    assert np.array_equal(out, telea_fill(photo, hole))
    # a uniform correction of +20 in the frame lifts the hole by 20 (known pixels untouched)
    brighter = np.clip(prefill.astype(int) + 20, 0, 255).astype(np.uint8)
    out2, _ = inpaint_composite(photo, hole, brighter, t, 2.0, frame_prefill=prefill)
    diff = out2[hole].astype(int) - telea_fill(photo, hole)[hole].astype(int)
    assert np.array_equal(out2[~hole], photo[~hole])
    assert np.median(diff) == 20
