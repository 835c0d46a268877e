"""Inpainting fills the holes with the person's parsing (given, else estimated once from the photo with the hole
Telea-filled: a hole is missing, its content is never looked at), never with a parsing the semantic network
guesses from a zeroed hole."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from glocal_cli.data.prefill import telea_fill
from glocal_cli.infer.config import InferConfig
from glocal_cli.infer.pipeline import GLocalPipeline
from tests.infer_helpers import save_tiny_weights, standing_pose


@pytest.fixture(scope="module")
def pipe(tmp_path_factory):
    weights = save_tiny_weights(tmp_path_factory.mktemp("weights"))
    return GLocalPipeline.from_pretrained(weights, device="cpu", config=InferConfig(workers=0))


@pytest.fixture
def spy(pipe, monkeypatch):
    """Records the semantic network's calls and the target parsing the model receives."""
    seen: dict[str, list] = {"semantic": [], "target_parsing": []}
    model = pipe.model
    semantic_forward = model.semantic.forward
    model_forward = model.forward

    def semantic(*args, **kwargs):
        seen["semantic"].append(args[0].detach().clone())
        return semantic_forward(*args, **kwargs)

    def forward(*args, **kwargs):
        tp = args[4] if len(args) > 4 else kwargs.get("target_parsing")
        seen["target_parsing"].append(None if tp is None else tp.detach().clone())
        return model_forward(*args, **kwargs)

    monkeypatch.setattr(model.semantic, "forward", semantic)
    monkeypatch.setattr(model, "forward", forward)
    return seen


def test_given_parsing_is_the_target_parsing(pipe, spy):
    img = (np.random.default_rng(0).random((32, 24, 3)) * 255).astype(np.uint8)
    labels = np.zeros((32, 24), np.uint8)
    labels[4:28, 6:18] = 3
    labels[20:30, 8:16] = 5
    hole = np.zeros((32, 24), bool)
    hole[8:24, 4:20] = True
    res = pipe.inpaint(img, hole, source_pose=standing_pose(32, 24), source_parsing=labels, return_details=True)
    assert spy["semantic"] == []  # no parsing predicted from the holed image
    (tp,) = spy["target_parsing"]
    assert tp is not None and np.array_equal(tp[0].argmax(0).numpy(), labels)
    assert np.array_equal(res.parsing, labels)


def test_without_parsing_it_is_estimated_once_from_the_filled_photo(pipe, spy):
    img = (np.random.default_rng(1).random((32, 24, 3)) * 255).astype(np.uint8)
    hole = np.zeros((32, 24), bool)
    hole[8:24, 4:20] = True
    res = pipe.inpaint(img, hole, source_pose=standing_pose(32, 24), return_details=True)
    assert len(spy["semantic"]) == 1  # the estimate of the source parsing, nothing more
    seen_image = spy["semantic"][0][0]
    filled = torch.from_numpy(telea_fill(img, hole)).permute(2, 0, 1).float() / 127.5 - 1
    assert torch.allclose(seen_image, filled, atol=1e-5)  # the photo with the hole filled, not what it hides
    (tp,) = spy["target_parsing"]
    assert np.array_equal(tp[0].argmax(0).numpy(), res.parsing)
