"""``train.generator_flow``: the generator stage trains with the dataset's ground-truth correspondence
as an external flow (what ``--flow body3d`` feeds at inference)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from glocal_cli.errors import DataError
from glocal_cli.train.stages import given_flow_inputs
from glocal_cli.train.trainer import train
from tests.integration.conftest import make_synth

FAST = ["train.log_every=1", "train.val_every=2", "train.val_pairs=4", "train.image_every=2"]


@pytest.fixture(scope="module")
def synth_data(tmp_path_factory) -> Path:
    return make_synth(tmp_path_factory, "synth-given", identities=5, poses=3, seed=1, test_fraction=0.4)


def test_given_flow_inputs_classes() -> None:
    flow = torch.ones(1, 2, 2, 2)
    valid = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])  # one visible pixel
    body = torch.tensor([[[[1.0, 1.0], [0.0, 0.0]]]])  # one invisible body pixel, two background
    f, v = given_flow_inputs({"flow": flow, "flow_valid": valid, "flow_body": body})
    assert v.flatten().tolist() == [1.0, 0.0, 1.0, 1.0]
    assert f[0, :, 0, 0].tolist() == [1.0, 1.0] and float(f[0, :, 1].abs().sum()) == 0.0  # background: zero flow
    f2, v2 = given_flow_inputs({"flow": flow, "flow_valid": valid})  # surface maps: no body mask
    assert v2.flatten().tolist() == [1.0, 0.0, 0.0, 0.0]


def test_generator_trains_with_the_given_flow(synth_data: Path, tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    from glocal_cli.models.generator import GLocalModel

    seen: list[bool] = []
    original = GLocalModel.forward

    def spy(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        if kwargs.get("mode") == "transfer":
            seen.append(kwargs.get("flow") is not None)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(GLocalModel, "forward", spy)
    res = train(synth_data, "tiny", [*FAST, "train.generator_flow=given", "train.allow_untrained_semantic=true"],
                stage="generator", runs_dir=tmp_path, name="given", max_steps=2, device="cpu")
    assert res.stages[0].step == 2
    assert seen and all(seen), "the generator stage did not pass the given flow to the model"
    seen.clear()
    train(synth_data, "tiny", [*FAST, "train.generator_flow=mixed", "train.allow_untrained_semantic=true"],
          stage="generator", runs_dir=tmp_path, name="mixed", max_steps=4, device="cpu")
    assert any(seen) and not all(seen)


def test_given_flow_needs_ground_truth(synth_data: Path, tmp_path: Path) -> None:
    import json
    import shutil

    data = tmp_path / "nogt"
    shutil.copytree(synth_data, data)
    shutil.rmtree(data / "surface")
    manifest = json.loads((data / "manifest.json").read_text())
    manifest["has_surface"] = False
    (data / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DataError, match="generator_flow"):
        train(data, "tiny", [*FAST, "train.generator_flow=given", "train.allow_untrained_semantic=true"],
              stage="generator", runs_dir=tmp_path, name="x", max_steps=1, device="cpu")


def test_inpaint_stage_uses_the_source_parsing_as_target(synth_data: Path, tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    """As at inference (issue 13 item 7): the hole's parsing is the known source parsing, not a prediction
    from the holed image."""
    from glocal_cli.models.generator import GLocalModel

    seen: list[bool] = []
    original = GLocalModel.forward

    def spy(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        if kwargs.get("mode") == "inpaint":
            seen.append(args[4] is not None and args[3] is args[4])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(GLocalModel, "forward", spy)
    train(synth_data, "tiny", [*FAST, "train.allow_untrained_semantic=true"], stage="inpaint", runs_dir=tmp_path,
          name="inp", max_steps=2, device="cpu")
    assert seen and all(seen)
