"""LPIPS network in plain torch: shapes, ordering and weight loading, with RANDOM weights only.

Random weights cannot reproduce published LPIPS values; these tests check the structure (five
stages, unit-normalised differences, non-negative heads) and the loading of the two weight files.
"""

from __future__ import annotations

import pytest
import torch

from glocal_cli.errors import NotAvailableError, WeightsError
from glocal_cli.metrics.lpips import CHANNELS, LPIPS, find_lpips_weights


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _random_lpips(net: str, seed: int = 0) -> LPIPS:
    torch.manual_seed(seed)
    model = LPIPS(net)
    with torch.no_grad():
        for head in model.heads():
            head.model[1].weight.abs_()  # published heads are non-negative
    return model


def _images(n=2, h=48, w=40, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, h, w, generator=g) * 2 - 1


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_lpips_shapes_identity_symmetry_and_ordering(net):
    model = _random_lpips(net)
    assert [h.model[1].in_channels for h in model.heads()] == list(CHANNELS[net])
    x = _images()
    with torch.inference_mode():
        assert model.stages(x)[0].shape[1] == CHANNELS[net][0]
        d_same = model(x, x)
        assert d_same.shape == (2,) and torch.allclose(d_same, torch.zeros(2), atol=1e-7)
        g = torch.Generator().manual_seed(2)
        noise = torch.randn(x.shape, generator=g)
        dists = [model(x, (x + s * noise).clamp(-1, 1)) for s in (0.02, 0.1, 0.4)]
        y = (x + 0.1 * noise).clamp(-1, 1)
        torch.testing.assert_close(model(x, y), model(y, x))
    assert all((d > 0).all() for d in dists)
    assert (dists[0] < dists[1]).all() and (dists[1] < dists[2]).all()


def test_from_files_loads_heads_and_torchvision_backbone(tmp_path):
    source = _random_lpips("alex", seed=3)
    heads = {f"lin{i}.model.1.weight": h.model[1].weight.clone() for i, h in enumerate(source.heads())}
    torch.save(heads, tmp_path / "alex.pth")
    backbone = {f"features.{k}": v.clone() for k, v in source.features.state_dict().items()}
    backbone["classifier.1.weight"] = torch.zeros(4, 4)  # extra torchvision keys are ignored
    torch.save(backbone, tmp_path / "alexnet-owt-7be5be79.pth")
    files = find_lpips_weights("alex", tmp_path)
    assert files.heads.name == "alex.pth" and files.backbone.name == "alexnet-owt-7be5be79.pth"
    loaded = LPIPS.from_files("alex", files.heads, files.backbone)
    x, y = _images(seed=4), _images(seed=5)
    with torch.inference_mode():
        torch.testing.assert_close(loaded(x, y), source(x, y))
    assert not any(p.requires_grad for p in loaded.parameters())

    torch.save({"lin0.model.1.weight": torch.zeros(1, 3, 1, 1)}, tmp_path / "bad.pth")
    with pytest.raises(WeightsError, match="linear heads"):
        LPIPS.from_files("alex", tmp_path / "bad.pth", files.backbone)


def test_missing_lpips_weights_say_what_to_put_where(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr("glocal_cli.metrics.lpips._package_heads", lambda net: None)
    with pytest.raises(NotAvailableError, match=r"lpips_v0\.1_vgg\.pth.*vgg16-397923af\.pth"):
        find_lpips_weights("vgg")
    (tmp_path / "only_heads").mkdir()
    torch.save({}, tmp_path / "only_heads" / "alex.pth")
    with pytest.raises(NotAvailableError, match="alexnet-owt-7be5be79.pth"):
        find_lpips_weights("alex", tmp_path / "only_heads")
    with pytest.raises(WeightsError, match="no such"):
        find_lpips_weights("alex", tmp_path / "nope.pth")


def test_lpips_in_evaluate_per_image_and_pidm_resize(tmp_path):
    import numpy as np
    from PIL import Image

    from glocal_cli.metrics.config import EvalConfig
    from glocal_cli.metrics.evaluate import evaluate

    source = _random_lpips("alex", seed=6)
    weights = tmp_path / "w"
    weights.mkdir()
    torch.save({f"lin{i}.model.1.weight": h.model[1].weight for i, h in enumerate(source.heads())},
               weights / "alex.pth")
    torch.save({f"features.{k}": v for k, v in source.features.state_dict().items()},
               weights / "alexnet-owt-7be5be79.pth")
    rng = np.random.default_rng(0)
    for sub in ("g", "r"):
        (tmp_path / sub).mkdir()
    for i, noise in enumerate((5, 40, 120)):
        base = rng.integers(60, 200, size=(64, 44, 3))
        Image.fromarray(base.astype(np.uint8)).save(tmp_path / "r" / f"{i}.png")
        noisy = np.clip(base + rng.integers(-noise, noise + 1, size=base.shape), 0, 255).astype(np.uint8)
        Image.fromarray(noisy).save(tmp_path / "g" / f"{i}.png")
    for protocol in ("clean", "pidm"):  # pidm resizes both inputs to 256x176 first
        res = evaluate(tmp_path / "g", tmp_path / "r", protocol=protocol, metrics=["lpips"],
                       lpips_weights=weights, config=EvalConfig(workers=0), progress=False)
        values = res.per_image["lpips"]
        assert res.metric("lpips").status == "ok" and values[0] < values[1] < values[2]
