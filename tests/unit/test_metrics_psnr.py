"""Float PSNR equals scikit-image's; the uint8-wraparound variant reproduces the PISE-lineage numbers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from glocal_cli.errors import InputError
from glocal_cli.metrics.psnr import WRAPAROUND_LABEL, psnr, psnr_uint8_wraparound, wraparound_mse

skimage_metrics = pytest.importorskip("skimage.metrics")


def _samples(shared_data, n=8):
    gts, outs = [], []
    for f in sorted((shared_data / "deepfashion" / "samples").glob("*.png"))[:n]:
        a = np.asarray(Image.open(f).convert("RGB"))
        gts.append(a[:, 256 + 40 : 512 - 40])  # 176-wide, as PISE's script compares them
        outs.append(a[:, 512 + 40 : 768 - 40])
    return np.stack(gts), np.stack(outs)


def _t(x):
    return torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()


def test_float_psnr_equals_skimage(shared_data):
    ref, gen = _samples(shared_data)
    expected = [skimage_metrics.peak_signal_noise_ratio(r, g, data_range=255) for r, g in zip(ref, gen)]
    np.testing.assert_allclose(psnr(_t(gen), _t(ref)).numpy(), expected, rtol=0, atol=1e-10)
    # GFLA's form (float32 images in [0, 1], data_range=1) agrees to float32 rounding
    gfla_style = [
        skimage_metrics.peak_signal_noise_ratio(r.astype(np.float32) / 255, g.astype(np.float32) / 255, data_range=1)
        for r, g in zip(ref, gen)
    ]
    np.testing.assert_allclose(psnr(_t(gen), _t(ref)).numpy(), gfla_style, atol=1e-4)


def test_wraparound_matches_direct_numpy_and_exceeds_float_psnr(shared_data):
    ref, gen = _samples(shared_data)
    direct_mse = np.array([((g - r) ** 2).mean() for g, r in zip(gen, ref)])  # uint8 arithmetic, no cast
    np.testing.assert_allclose(wraparound_mse(_t(gen), _t(ref)).numpy(), direct_mse, rtol=0, atol=1e-12)
    direct = 20 * np.log10(255) - 10 * np.log10(direct_mse)
    wrap = psnr_uint8_wraparound(_t(gen), _t(ref)).numpy()
    np.testing.assert_allclose(wrap, direct, rtol=0, atol=1e-10)
    correct = psnr(_t(gen), _t(ref)).numpy()
    assert (wrap > correct).all()
    assert wrap.mean() > 28 and correct.mean() < 22  # the ~31 dB vs ~17 dB gap of the issue


def test_psnr_edge_cases_and_label():
    a = torch.randint(0, 256, (2, 3, 8, 8), dtype=torch.uint8)
    assert torch.isinf(psnr(a, a)).all()
    with pytest.raises(InputError, match="uint8"):
        psnr_uint8_wraparound(a.float(), a.float())
    with pytest.raises(InputError, match="equal size"):
        psnr(a, a[..., :4])
    assert "uint8-wraparound" in WRAPAROUND_LABEL and "not a true PSNR" in WRAPAROUND_LABEL


@pytest.mark.slow
def test_compiled_psnr_equals_eager(shared_data):
    """The opt-in torch.compile'd uint8 PSNR (compiles for seconds, hence slow) gives the eager values."""
    gt, out = _samples(shared_data)
    g, o = _t(gt), _t(out)
    np.testing.assert_allclose(psnr(o, g, compile=True).numpy(), psnr(o, g, compile=False).numpy(), rtol=0, atol=1e-12)
