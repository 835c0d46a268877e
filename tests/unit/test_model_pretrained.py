"""Weights folders: save/load bit-exact, strictness, format version, other models' folders, truncation."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from glocal_cli.config import resolve_config
from glocal_cli.errors import WeightsError
from glocal_cli.models.discriminator import Discriminator
from glocal_cli.models.generator import GLocalModel
from glocal_cli.models.pretrained import from_pretrained, load_discriminator

CFG = resolve_config("tiny")
H, W = CFG.data.height, CFG.data.width


def _inputs() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return {"source_image": torch.rand(1, 3, H, W, generator=g) * 2 - 1,
            "source_pose": torch.rand(1, 18, H, W, generator=g),
            "target_pose": torch.rand(1, 18, H, W, generator=g),
            "source_parsing": F.one_hot(torch.randint(0, 8, (1, H, W), generator=g), 8).permute(0, 3, 1, 2).float()}


@pytest.fixture
def saved(tmp_path: Path) -> tuple[GLocalModel, Path]:
    torch.manual_seed(0)
    model = GLocalModel(CFG.model, H, W)
    model.train()
    model(**_inputs())  # move the BatchNorm running statistics away from their defaults
    model.eval()
    model.save_pretrained(tmp_path / "w", discriminator=Discriminator(CFG.model))
    return model, tmp_path / "w"


def test_save_load_bit_exact(saved: tuple[GLocalModel, Path]) -> None:
    model, folder = saved
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "discriminator", "flow", "generator", "semantic"]
    assert (folder / "generator" / "model.safetensors").is_file() and (folder / "generator" / "config.json").is_file()
    loaded = GLocalModel.from_pretrained(folder).eval()
    for (ka, va), (kb, vb) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)
    with torch.no_grad():
        assert torch.equal(model(**_inputs()).image, loaded(**_inputs()).image)
    assert isinstance(load_discriminator(folder), Discriminator)


def test_config_round_trips(saved: tuple[GLocalModel, Path]) -> None:
    model, folder = saved
    loaded = from_pretrained(folder)
    assert loaded.cfg == model.cfg and (loaded.height, loaded.width) == (H, W)


def test_other_model_folder_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"_class_name": "UNet2DModel", "sample_size": 64}))
    with pytest.raises(WeightsError, match="not a GLocal weights folder"):
        from_pretrained(tmp_path)
    with pytest.raises(WeightsError, match="no such weights folder"):
        from_pretrained(tmp_path / "nope")


def test_format_version_is_checked(saved: tuple[GLocalModel, Path]) -> None:
    _, folder = saved
    meta = json.loads((folder / "config.json").read_text())
    meta["format_version"] = 99
    (folder / "config.json").write_text(json.dumps(meta))
    with pytest.raises(WeightsError, match="format_version 99"):
        from_pretrained(folder)


def test_truncated_weights_are_rejected(saved: tuple[GLocalModel, Path]) -> None:
    _, folder = saved
    path = folder / "generator" / "model.safetensors"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(WeightsError, match="generator"):
        from_pretrained(folder)


def test_architecture_mismatch_is_strict(saved: tuple[GLocalModel, Path]) -> None:
    _, folder = saved
    meta = json.loads((folder / "config.json").read_text())
    meta["model"] = dict(meta["model"], style_channels=32)
    (folder / "config.json").write_text(json.dumps(meta))
    with pytest.raises(WeightsError, match="shape|missing|unexpected"):
        from_pretrained(folder)


def test_missing_component_for_flow_none(tmp_path: Path) -> None:
    model = GLocalModel(dataclasses.replace(CFG.model, flow="none"), H, W)
    model.save_pretrained(tmp_path)
    assert not (tmp_path / "flow").exists()
    assert from_pretrained(tmp_path).flow is None
    with pytest.raises(WeightsError, match="no discriminator"):
        load_discriminator(tmp_path)
