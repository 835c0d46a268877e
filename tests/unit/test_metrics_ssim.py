"""SSIM equals scikit-image's structural_similarity (same parameters) on the real samples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from glocal_cli.errors import InputError
from glocal_cli.metrics.ssim import SSIMSpec, ssim

skimage_metrics = pytest.importorskip("skimage.metrics")


def _panels(folder: Path, n: int, pad: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(ground truth, generated) uint8 stacks (N, H, W, 3) of the first n sample panels."""
    gts, outs = [], []
    for f in sorted(folder.glob("*.png"))[:n]:
        a = np.asarray(Image.open(f).convert("RGB"))
        w = a.shape[1] // 3
        gts.append(a[:, w + pad : 2 * w - pad])
        outs.append(a[:, 2 * w + pad : 3 * w - pad])
    return np.stack(gts), np.stack(outs)


def _skimage(gen: np.ndarray, ref: np.ndarray, spec: SSIMSpec) -> np.ndarray:
    vals = []
    for g, r in zip(gen, ref):
        dr = float(g.max()) - float(g.min()) if spec.data_range == "generated" else float(spec.data_range)
        vals.append(
            skimage_metrics.structural_similarity(
                r, g, data_range=dr, gaussian_weights=spec.gaussian_weights, sigma=spec.sigma,
                win_size=spec.win_size, use_sample_covariance=spec.use_sample_covariance, channel_axis=-1,
            )
        )
    return np.asarray(vals)


def _t(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()


SPECS = {
    "patn": SSIMSpec(data_range="generated", sigma=1.5),
    "pidm-sigma1.2": SSIMSpec(data_range="generated", sigma=1.2),
    "gfla-win51": SSIMSpec(data_range=255.0, gaussian_weights=False, win_size=51, use_sample_covariance=True),
    "clean": SSIMSpec(data_range=255.0),
    "crop-smaller-than-filter": SSIMSpec(data_range=255.0, win_size=7),
    "crop-larger-than-filter": SSIMSpec(data_range=255.0, sigma=1.0, win_size=15),
}


@pytest.mark.parametrize("name", list(SPECS))
def test_ssim_equals_skimage_on_deepfashion_samples(shared_data, name):
    spec = SPECS[name]
    ref, gen = _panels(shared_data / "deepfashion" / "samples", 3)  # 256x256 panels, padded as published
    expected = _skimage(gen, ref, spec)
    got = ssim(_t(gen), _t(ref), spec).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)


def test_ssim_equals_skimage_on_unpadded_deepfashion_and_market(shared_data):
    for folder, pad in ((shared_data / "deepfashion" / "samples", 40), (shared_data / "market1501" / "samples", 0)):
        ref, gen = _panels(folder, 3, pad)
        for spec in (SPECS["patn"], SPECS["clean"]):
            np.testing.assert_allclose(ssim(_t(gen), _t(ref), spec).numpy(), _skimage(gen, ref, spec), atol=1e-4)


def test_float64_path_matches_skimage_to_machine_precision(shared_data):
    ref, gen = _panels(shared_data / "market1501" / "samples", 2)
    got = ssim(_t(gen), _t(ref), SPECS["patn"], precision="float64").numpy()
    np.testing.assert_allclose(got, _skimage(gen, ref, SPECS["patn"]), atol=1e-10)


def test_batched_values_equal_single_image_values():
    g = torch.randint(0, 256, (5, 3, 40, 30), dtype=torch.uint8)
    r = torch.randint(0, 256, (5, 3, 40, 30), dtype=torch.uint8)
    batch = ssim(g, r, chunk=2)
    single = torch.cat([ssim(g[i : i + 1], r[i : i + 1]) for i in range(5)])
    torch.testing.assert_close(batch, single)
    assert torch.allclose(ssim(g, g), torch.ones(5, dtype=torch.float64))


def test_window_size_follows_skimage_rule():
    assert SSIMSpec(sigma=1.5).effective_win_size == 11
    assert SSIMSpec(sigma=1.2).effective_win_size == 9
    assert SSIMSpec(gaussian_weights=False).effective_win_size == 7


def test_ssim_rejects_bad_inputs():
    a = torch.zeros(1, 3, 20, 20)
    with pytest.raises(InputError, match="equal size"):
        ssim(a, torch.zeros(1, 3, 20, 21))
    with pytest.raises(InputError, match="exceeds"):
        ssim(a, a, SSIMSpec(gaussian_weights=False, win_size=51))
    with pytest.raises(InputError, match="odd"):
        ssim(a, a, SSIMSpec(win_size=8))


@pytest.mark.gpu
def test_cuda_equals_cpu():
    g = torch.randint(0, 256, (4, 3, 64, 48), dtype=torch.uint8)
    r = torch.randint(0, 256, (4, 3, 64, 48), dtype=torch.uint8)
    for spec in SPECS.values():
        torch.testing.assert_close(ssim(g.cuda(), r.cuda(), spec).cpu(), ssim(g, r, spec), atol=1e-5, rtol=0)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["patn", "gfla-win51", "clean"])
def test_compiled_ssim_equals_skimage(shared_data, name):
    """The opt-in torch.compile path (Inductor C++; compiles for seconds, hence slow) equals scikit-image."""
    spec = SPECS[name]
    ref, gen = _panels(shared_data / "market1501" / "samples", 2)
    got = ssim(_t(gen).contiguous(memory_format=torch.channels_last), _t(ref), spec, compile=True).numpy()
    np.testing.assert_allclose(got, _skimage(gen, ref, spec), atol=1e-4, rtol=0)


def test_small_batches_never_compile_and_compile_errors_fall_back(monkeypatch):
    import glocal_cli.metrics.ssim as mod

    def boom(*args, **kwargs):
        raise RuntimeError("no compiler")

    g = torch.randint(0, 256, (3, 3, 24, 20), dtype=torch.uint8)
    r = torch.randint(0, 256, (3, 3, 24, 20), dtype=torch.uint8)
    eager = ssim(g, r, compile=False)
    monkeypatch.setattr(mod, "_compiled_ssim", boom)
    torch.testing.assert_close(ssim(g, r), eager)  # 3 images < COMPILE_MIN_IMAGES: eager, no compile
    torch.testing.assert_close(ssim(g, r, compile=True), eager)  # compile failure: eager fallback
