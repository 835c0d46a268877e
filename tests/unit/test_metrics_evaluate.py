"""``evaluate`` on the real samples (the Deformable-GAN peer result) and the report files."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from glocal_cli.errors import ConfigError, InputError, OutputExistsError
from glocal_cli.metrics.config import EvalConfig
from glocal_cli.metrics.evaluate import evaluate

skimage_metrics = pytest.importorskip("skimage.metrics")
CFG = EvalConfig(workers=0, batch_size=4, worst_k=3)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture()
def panels(shared_data, tmp_path):
    """Five DeepFashion sample panels ([source | ground truth | Deformable-GAN], 40-px padding)."""
    folder = tmp_path / "panels"
    folder.mkdir()
    for f in sorted((shared_data / "deepfashion" / "samples").glob("*.png"))[:5]:
        shutil.copy(f, folder / f.name)
    return folder


def _unpadded(folder):
    for f in sorted(folder.glob("*.png")):
        a = np.asarray(Image.open(f).convert("RGB"))
        yield a[:, 296:472], a[:, 552:728]  # ground truth, output (176 wide)


def _white_pad(x):
    out = np.full((x.shape[0], 256, 3), 255, np.uint8)
    out[:, 40:216] = x
    return out


def test_pise_protocol_reproduces_the_lineage_recipe(panels, tmp_path):
    res = evaluate(panel_dir=panels, panel_pad=40, protocol="pise", config=CFG,
                   metrics=["ssim", "psnr_uint8_wraparound"], out=tmp_path / "out", progress=False)
    ssim_ref, wrap_ref = [], []
    for gt, out in _unpadded(panels):
        g, o = _white_pad(gt), _white_pad(out)
        ssim_ref.append(skimage_metrics.structural_similarity(
            g, o, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, channel_axis=-1,
            data_range=float(o.max()) - float(o.min())))
        wrap_ref.append(20 * np.log10(255) - 10 * np.log10(((out - gt) ** 2).mean()))
    np.testing.assert_allclose(res.per_image["ssim"], ssim_ref, atol=1e-4)
    np.testing.assert_allclose(res.per_image["psnr_uint8_wraparound"], wrap_ref, atol=1e-9)
    assert res.metric("ssim").value == pytest.approx(np.mean(ssim_ref), abs=1e-4)
    assert not res.failed

    out = tmp_path / "out"
    data = json.loads((out / "metrics.json").read_text())
    assert data["protocol"] == "pise" and data["pairs"] == 5
    assert "uint8-wraparound" in data["metrics"]["psnr_uint8_wraparound"]["label"]
    rows = list(csv.DictReader((out / "per_image.csv").open()))
    assert len(rows) == 5 and set(rows[0]) >= {"name", "generated", "reference", "ssim", "psnr_uint8_wraparound"}
    assert "uint8-wraparound" in (out / "report.md").read_text()
    assert Image.open(out / "histogram.png").size[0] > 100
    grid = Image.open(out / "worst.png")
    assert grid.size[0] >= 3 * 2 * 176 * 192 // 256  # three [generated | reference] cells

    with pytest.raises(OutputExistsError, match="--overwrite"):
        evaluate(panel_dir=panels, panel_pad=40, protocol="pise", config=CFG, out=out, progress=False)
    again = evaluate(panel_dir=panels, panel_pad=40, protocol="pise", config=CFG, metrics=["ssim"],
                     out=out, overwrite=True, progress=False)
    assert again.metric("ssim").value == pytest.approx(res.metric("ssim").value)


def test_clean_protocol_on_folders(panels, tmp_path):
    gen_dir, ref_dir = tmp_path / "gen", tmp_path / "ref"
    gen_dir.mkdir()
    ref_dir.mkdir()
    expected_ssim, expected_psnr = [], []
    for i, (gt, out) in enumerate(_unpadded(panels)):
        Image.fromarray(gt).save(ref_dir / f"t{i}.jpg", quality=100)
        gt = np.asarray(Image.open(ref_dir / f"t{i}.jpg"))  # compare against what the file holds
        Image.fromarray(out).save(gen_dir / f"s{i}.jpg_t{i}.jpg.png")
        expected_ssim.append(skimage_metrics.structural_similarity(
            gt, out, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, channel_axis=-1, data_range=255))
        expected_psnr.append(skimage_metrics.peak_signal_noise_ratio(gt, out, data_range=255))
    Image.new("RGB", (176, 256)).save(gen_dir / "orphan.png")
    res = evaluate(gen_dir, ref_dir, config=CFG, metrics=["ssim", "psnr"], progress=False)
    np.testing.assert_allclose(res.per_image["ssim"], expected_ssim, atol=1e-4)
    np.testing.assert_allclose(res.per_image["psnr"], expected_psnr, atol=1e-9)
    assert res.unmatched_generated == ["orphan.png"]

    Image.new("RGB", (176, 256)).save(gen_dir / "s0.jpg_t0.jpg.jpg")
    with pytest.raises(InputError, match="PNG outputs only"):
        evaluate(gen_dir, ref_dir, config=CFG, metrics=["ssim"], progress=False)


def test_clean_refuses_frames_that_differ(tmp_path):
    (tmp_path / "g").mkdir()
    (tmp_path / "r").mkdir()
    Image.new("RGB", (176, 256)).save(tmp_path / "g" / "a.png")
    Image.new("RGB", (256, 256)).save(tmp_path / "r" / "a.png")
    with pytest.raises(InputError, match="a.png: generated image is 256x176 but its reference is 256x256"):
        evaluate(tmp_path / "g", tmp_path / "r", config=CFG, metrics=["ssim"], progress=False)
    # the PISE lineage crops a padded 256-wide reference to the 176-wide output
    res = evaluate(tmp_path / "g", tmp_path / "r", config=CFG, protocol="pise",
                   metrics=["psnr_uint8_wraparound"], progress=False)
    assert res.per_image["psnr_uint8_wraparound"][0] == float("inf")


def test_input_option_errors(panels):
    with pytest.raises(ConfigError, match="--panel-dir replaces"):
        evaluate(panels, panels, panel_dir=panels, config=CFG, progress=False)
    with pytest.raises(ConfigError, match="--generated DIR and --reference DIR"):
        evaluate(panels, config=CFG, progress=False)
    with pytest.raises(ConfigError, match="--device"):
        evaluate(panel_dir=panels, config=CFG, device="tpu", progress=False)


def test_pidm_resize_matches_cv2_inter_linear():
    cv2 = pytest.importorskip("cv2")
    from glocal_cli.metrics.evaluate import _resize

    a = np.random.default_rng(0).integers(0, 256, size=(256, 256, 3)).astype(np.float32)
    ours = _resize(torch.from_numpy(a).permute(2, 0, 1)[None], (256, 176))[0].permute(1, 2, 0).numpy()
    assert np.abs(ours - cv2.resize(a, (176, 256))).max() < 0.01  # gray levels on the 0..255 scale


@pytest.mark.gpu
def test_cuda_evaluation_equals_cpu(panels):
    kwargs = dict(panel_dir=panels, panel_pad=40, protocol="gfla", metrics=["ssim", "ssim_256", "psnr"],
                  config=CFG, progress=False)
    cpu = evaluate(device="cpu", **kwargs)
    gpu = evaluate(device="cuda", **kwargs)
    for key in ("ssim", "ssim_256", "psnr"):
        np.testing.assert_allclose(gpu.per_image[key], cpu.per_image[key], atol=1e-5)


@pytest.mark.slow
def test_fused_kernels_give_the_same_report(panels):
    """eval.compile=on (torch.compile'd SSIM/PSNR, several seconds to compile) equals the default path."""
    import dataclasses

    off = evaluate(panel_dir=panels, panel_pad=40, protocol="clean", metrics=["ssim", "psnr"], progress=False,
                   config=dataclasses.replace(CFG, compile="off"))
    on = evaluate(panel_dir=panels, panel_pad=40, protocol="clean", metrics=["ssim", "psnr"], progress=False,
                  config=dataclasses.replace(CFG, compile="on"))
    for key in ("ssim", "psnr"):
        assert abs(on.metric(key).value - off.metric(key).value) < 1e-5
