"""Frechet distance, feature statistics, weights discovery and the FID/IS pipeline end to end.

The end-to-end tests run on a locally built InceptionV3 with random weights: they check the whole
path (loading, resizing, features, cached real statistics, Frechet distance, Inception Score) and that
it equals pytorch-fid's own network on the same weights. The FID and IS values themselves are NOT
meaningful with random weights.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import linalg

from glocal_cli.errors import WeightsError
from glocal_cli.metrics.config import EvalConfig
from glocal_cli.metrics.evaluate import evaluate
from glocal_cli.metrics.fid import (
    FID_WEIGHTS_NAME,
    FeatureStats,
    FIDInceptionV3,
    find_inception_weights,
    frechet_distance,
    random_inception_state,
)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Small CPU workloads run faster (and steadier on shared CPUs) on one intra-op thread."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _scipy_reference(mu1, s1, mu2, s2):
    """The textbook formula with scipy.linalg.sqrtm of the (non-symmetric) product."""
    covmean = linalg.sqrtm(s1 @ s2)
    covmean = np.real(covmean)
    diff = mu1 - mu2
    return diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)


def test_frechet_distance_equals_scipy_reference_on_random_gaussians():
    rng = np.random.default_rng(0)
    for dim in (3, 32, 128):
        a = rng.normal(size=(4 * dim, dim)) @ rng.normal(size=(dim, dim))
        b = rng.normal(size=(4 * dim, dim)) @ rng.normal(size=(dim, dim)) + 0.5
        mu1, s1 = a.mean(0), np.cov(a, rowvar=False)
        mu2, s2 = b.mean(0), np.cov(b, rowvar=False)
        ref = _scipy_reference(mu1, s1, mu2, s2)
        assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(ref, rel=1e-7)
    assert frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0.0, abs=1e-7 * np.trace(s1))


def test_low_rank_path_equals_full_path_and_scipy():
    rng = np.random.default_rng(2)
    dim, n = 64, 20  # fewer samples than dimensions: singular covariance
    a = rng.normal(size=(n, dim)) * rng.uniform(0.5, 2, size=dim)
    b = rng.normal(size=(3 * dim, dim)) + 0.3
    stats = FeatureStats(dim)
    stats.update(torch.from_numpy(a))
    mu1, s1 = stats.mean_cov()
    mu2, s2 = b.mean(0), np.cov(b, rowvar=False)
    full = frechet_distance(mu1, s1, mu2, s2)
    low = frechet_distance(mu1, s1, mu2, s2, factor1=stats.factor())
    assert low == pytest.approx(full, rel=1e-7)  # sqrt near the zero eigenvalues limits the full path
    assert full == pytest.approx(_scipy_reference(mu1, s1, mu2, s2), rel=1e-6)
    stats.update(torch.from_numpy(rng.normal(size=(dim, dim))))
    assert stats.factor() is None  # more samples than dimensions: full path only


def test_frechet_distance_closed_form_for_diagonal_covariances():
    rng = np.random.default_rng(1)
    mu1, mu2 = rng.normal(size=50), rng.normal(size=50)
    v1, v2 = rng.uniform(0.1, 3, size=50), rng.uniform(0.1, 3, size=50)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(v1) - np.sqrt(v2)) ** 2)
    assert frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(expected, rel=1e-10)


def test_feature_stats_equal_numpy_mean_and_cov():
    feats = torch.randn(37, 2048, dtype=torch.float64) * 3 + 1
    stats = FeatureStats()
    for chunk in feats.split(10):
        stats.update(chunk.float())
    mu, sigma = stats.mean_cov()
    ref = feats.float().double().numpy()
    np.testing.assert_allclose(mu, ref.mean(0), atol=1e-10)
    np.testing.assert_allclose(sigma, np.cov(ref, rowvar=False), atol=1e-9)


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory):
    """Random FID InceptionV3 weights saved under pytorch-fid's file name in a fake hub cache."""
    hub = tmp_path_factory.mktemp("torch_home") / "hub"
    (hub / "checkpoints").mkdir(parents=True)
    path = hub / "checkpoints" / FID_WEIGHTS_NAME
    torch.save(random_inception_state(seed=0), path)
    return hub, path


@pytest.fixture()
def folders(tmp_path):
    """Three generated and three reference PNGs (tiny, random) with matching names."""
    rng = np.random.default_rng(3)
    gen, ref = tmp_path / "gen", tmp_path / "ref"
    gen.mkdir()
    ref.mkdir()
    for i in range(3):
        base = rng.integers(0, 256, size=(32, 24, 3), dtype=np.uint8)
        Image.fromarray(base).save(ref / f"img{i}.png")
        noisy = np.clip(base.astype(int) + rng.integers(-40, 40, size=base.shape), 0, 255).astype(np.uint8)
        Image.fromarray(noisy).save(gen / f"src{i}.jpg_img{i}.png")
    return gen, ref


def test_fid_and_is_pipeline_end_to_end_with_random_weights(random_weights, folders, tmp_path, monkeypatch):
    hub, weights = random_weights
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub))
    gen, ref = folders
    cfg = EvalConfig(workers=0, is_splits=3, stats_cache_dir=str(tmp_path / "cache"))
    # found in the (fake) hub cache without --inception-weights
    assert find_inception_weights(None) == weights
    result = evaluate(gen, ref, config=cfg, metrics=["ssim", "fid", "is"], progress=False)
    assert [m.status for m in result.metrics] == ["ok", "ok", "ok"], [m.reason for m in result.metrics]
    fid, iscore = result.metric("fid").value, result.metric("is").value
    assert np.isfinite(fid) and fid >= 0  # not meaningful with random weights
    assert iscore >= 1.0
    assert result.fid_real["cache_hit"] is False and result.fid_real["count"] == 3

    # our network equals pytorch-fid's InceptionV3 on the same weights (it loads them from the hub cache)
    monkeypatch.setenv("TORCH_HOME", str(hub.parent))
    from pytorch_fid.inception import InceptionV3

    theirs = InceptionV3([3]).eval()
    ours = FIDInceptionV3.from_file(weights)

    def load(folder):
        return torch.stack([torch.from_numpy(np.array(Image.open(p))).permute(2, 0, 1).float() / 255
                            for p in sorted(folder.glob("*.png"))])

    with torch.inference_mode():
        x_gen, x_ref = load(gen), load(ref)
        f_gen, f_ref = theirs(x_gen)[0].flatten(1), theirs(x_ref)[0].flatten(1)
        torch.testing.assert_close(ours(x_gen)[0], f_gen, rtol=1e-4, atol=1e-6)
    # independent formula: Tr((S1 S2)^(1/2)) = nuclear norm of A B^T (A, B centred / sqrt(n - 1))
    a, b = f_gen.double().numpy(), f_ref.double().numpy()
    ca, cb = (a - a.mean(0)) / np.sqrt(len(a) - 1), (b - b.mean(0)) / np.sqrt(len(b) - 1)
    tr_covmean = np.linalg.svd(ca @ cb.T, compute_uv=False).sum()
    expected = ((a.mean(0) - b.mean(0)) ** 2).sum() + (ca**2).sum() + (cb**2).sum() - 2 * tr_covmean
    assert fid == pytest.approx(expected, rel=1e-3, abs=1e-9)

    # second run: real-set statistics come from the cache, same value
    again = evaluate(gen, ref, config=cfg, metrics=["fid"], progress=False, inception_weights=weights)
    assert again.fid_real["cache_hit"] is True
    assert again.metric("fid").value == pytest.approx(fid, rel=1e-9)


def test_missing_inception_weights_fail_fid_only(folders, tmp_path, monkeypatch):
    empty = tmp_path / "empty_hub"
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(empty))
    gen, ref = folders
    result = evaluate(gen, ref, config=EvalConfig(workers=0), metrics=["ssim", "psnr", "fid", "is"], progress=False)
    status = {m.key: m.status for m in result.metrics}
    assert status == {"ssim": "ok", "psnr": "ok", "fid": "failed", "is": "failed"}
    reason = result.metric("fid").reason
    assert FID_WEIGHTS_NAME in reason and str(empty / "checkpoints") in reason and "--inception-weights" in reason
    assert [m.key for m in result.failed] == ["fid", "is"]
    assert result.metric("ssim").value is not None


def test_bad_weights_files_are_weights_errors(tmp_path):
    bad = tmp_path / "pt_inception-2015-12-05-bad.pth"
    torch.save({"fc.weight": torch.zeros(3)}, bad)
    with pytest.raises(WeightsError, match="not pytorch-fid"):
        FIDInceptionV3.from_file(bad)
    with pytest.raises(WeightsError, match="no such weights file"):
        find_inception_weights(tmp_path / "missing.pth")
    assert find_inception_weights(tmp_path) == bad  # a folder holding one
