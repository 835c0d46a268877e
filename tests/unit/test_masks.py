"""Inpainting masks: Liu et al. area-ratio bins, seeding, semantic masks, torch helpers, mask files."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from glocal_cli.data.masks import (
    MASK_RATIO_BINS,
    apply_mask,
    irregular_mask,
    irregular_masks_torch,
    load_mask,
    mask_ratio,
    ratio_bin_of,
    resolve_class_ids,
    sample_training_mask,
    semantic_mask,
    semantic_masks_torch,
)
from glocal_cli.errors import InputError


@pytest.mark.parametrize("size", [(32, 24), (64, 44), (256, 176)])
@pytest.mark.parametrize("bin_index", range(len(MASK_RATIO_BINS)))
def test_irregular_mask_lands_in_its_bin(size, bin_index):
    lo, hi = MASK_RATIO_BINS[bin_index]
    for seed in range(3):
        mask = irregular_mask(*size, bin_index, rng=seed)
        assert mask.dtype == bool and mask.shape == size
        assert lo < mask_ratio(mask) <= hi
        assert ratio_bin_of(mask_ratio(mask)) == bin_index


def test_irregular_mask_is_seeded_and_varied():
    a = irregular_mask(64, 44, 2, rng=7)
    assert np.array_equal(a, irregular_mask(64, 44, 2, rng=7))
    assert not np.array_equal(a, irregular_mask(64, 44, 2, rng=8))
    gen = np.random.default_rng(3)
    assert not np.array_equal(irregular_mask(64, 44, 2, gen), irregular_mask(64, 44, 2, gen))


def test_irregular_mask_explicit_range_and_random_bin():
    m = irregular_mask(40, 40, (0.25, 0.35), rng=0)
    assert 0.25 < mask_ratio(m) <= 0.35
    r = mask_ratio(irregular_mask(40, 40, None, rng=1))
    assert ratio_bin_of(r) is not None
    with pytest.raises(ValueError):
        irregular_mask(40, 40, 6)
    with pytest.raises(ValueError):
        irregular_mask(40, 40, (0.5, 0.2))


def test_irregular_mask_is_free_form_not_speckle():
    import cv2

    m = irregular_mask(128, 88, 3, rng=0).astype(np.uint8)
    n_components, _ = cv2.connectedComponents(m)
    assert n_components - 1 <= 12  # a few strokes, not scattered pixels


def test_semantic_mask_labels_onehot_names_and_dilate():
    labels = np.zeros((10, 8), np.uint8)
    labels[1:3] = 1  # hair
    labels[4:7] = 2  # upper
    labels[8:] = 3
    m = semantic_mask(labels, "hair,upper")
    assert m.sum() == 2 * 8 + 3 * 8
    onehot = np.eye(8, dtype=np.float32)[labels].transpose(2, 0, 1)
    assert np.array_equal(semantic_mask(onehot, [1, "upper"]), m)
    grown = semantic_mask(labels, ["hair"], dilate=1)
    assert grown.sum() > (labels == 1).sum()
    assert resolve_class_ids("Hat, coat, 3") == [1, 2, 3]
    with pytest.raises(InputError, match="did you mean 'hair'"):
        resolve_class_ids("hiar")
    with pytest.raises(InputError):
        resolve_class_ids("")


def test_torch_helpers_shapes_and_reproducibility():
    a = irregular_masks_torch(3, 32, 24, 1, seed=5)
    assert a.shape == (3, 1, 32, 24) and a.dtype == torch.float32
    assert torch.equal(a, irregular_masks_torch(3, 32, 24, 1, seed=5))
    assert torch.equal(a[1:], irregular_masks_torch(2, 32, 24, 1, seed=6))  # per-item seeds
    labels = torch.randint(0, 8, (2, 16, 12))
    sm = semantic_masks_torch(labels, "face")
    assert sm.shape == (2, 1, 16, 12)
    assert torch.equal(sm[:, 0].bool(), labels == 5)
    onehot = torch.nn.functional.one_hot(labels, 8).permute(0, 3, 1, 2).float()
    assert torch.equal(semantic_masks_torch(onehot, [5]), sm)


def test_apply_mask_numpy_and_torch():
    img = np.full((4, 3, 3), 200, np.uint8)
    mask = np.zeros((4, 3), bool)
    mask[0] = True
    out = apply_mask(img, mask, fill=255)
    assert out.dtype == np.uint8 and (out[0] == 255).all() and (out[1:] == 200).all()
    t = torch.ones(1, 3, 4, 3)
    tm = torch.from_numpy(mask).float()[None, None]
    assert apply_mask(t, tm)[0, :, 0].abs().sum() == 0


def test_sample_training_mask_semantic_and_irregular():
    labels = np.zeros((32, 24), np.uint8)
    labels[5:20, 5:15] = 2
    rng = np.random.default_rng(0)
    masks = [sample_training_mask(32, 24, rng, parsing=labels, semantic_prob=0.5) for _ in range(10)]
    assert all(m.shape == (32, 24) and m.any() for m in masks)
    assert any(np.array_equal(m, labels == 2) for m in masks)
    only_irregular = sample_training_mask(32, 24, 1, ratio_bins=[0])
    assert ratio_bin_of(mask_ratio(only_irregular)) == 0


def test_load_mask_resizes_thresholds_and_reads_odd_modes(tmp_path):
    m = np.zeros((20, 10), np.uint8)
    m[:5] = 255
    Image.fromarray(m).save(tmp_path / "bin.png")
    mask, notes = load_mask(tmp_path / "bin.png", size=(20, 10))
    assert mask.sum() == 50 and notes == []

    mask, notes = load_mask(tmp_path / "bin.png", size=(40, 20))
    assert mask.shape == (40, 20) and any("resized" in n for n in notes)

    soft = m.copy()
    soft[10:] = 100  # below half: kept
    soft[:2] = 180  # above half: hole
    Image.fromarray(soft).save(tmp_path / "soft.png")
    mask, notes = load_mask(tmp_path / "soft.png")
    assert mask.sum() == 50 and any("not binary" in n for n in notes)

    Image.fromarray(m.astype(np.uint16) * 257).save(tmp_path / "deep.png")
    assert load_mask(tmp_path / "deep.png")[0].sum() == 50
    rgba = np.zeros((20, 10, 4), np.uint8)
    rgba[..., 3] = m
    Image.fromarray(rgba, "RGBA").save(tmp_path / "alpha.png")
    assert load_mask(tmp_path / "alpha.png")[0].sum() == 50
    assert load_mask(tmp_path / "bin.png", invert=True)[0].sum() == 150

    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match="bad.png"):
        load_mask(tmp_path / "bad.png")
    with pytest.raises(InputError, match="not found"):
        load_mask(tmp_path / "missing.png")
