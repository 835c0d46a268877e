"""The source parsing of photos without a parsing file: two networks averaged (``infer.parsing_ensemble``), the
refine kept to the labels' outline and out of a hole, and the ``infer.*`` settings a weights folder records
(``config.json``'s ``"infer"``, :func:`glocal_cli.infer.config.weights_settings`) layered under the user's."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from glocal_cli.cli._infer_common import infer_config
from glocal_cli.errors import WeightsError
from glocal_cli.infer.config import InferConfig, weights_settings
from glocal_cli.infer.outline import parsing_labels, refine_radius, snap_person
from glocal_cli.infer.pipeline import GLocalPipeline
from tests.infer_helpers import save_tiny_weights, standing_pose


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("ensemble")
    weights = save_tiny_weights(root / "weights", inpaint_prefill=True)
    return weights, save_tiny_weights(root / "parser", seed=3, frame_scale=2)


def _inputs(pipe: GLocalPipeline, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    h, w = pipe.frame_hw
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(2, 3, h, w, generator=g) * 2 - 1
    big = (torch.rand(2, 3, 2 * h, 2 * w, generator=g) * 255).to(torch.uint8)
    return image, torch.rand(2, 18, h, w, generator=g), big


def test_the_ensemble_is_the_mean_of_both_networks(folders) -> None:
    weights, parser = folders
    own = GLocalPipeline.from_pretrained(weights, device="cpu", config=InferConfig(workers=0, parsing_flip=True))
    alone = GLocalPipeline.from_pretrained(weights, device="cpu", config=InferConfig(
        workers=0, parsing_flip=True, source_parser=str(parser)))
    both = GLocalPipeline.from_pretrained(weights, device="cpu", config=InferConfig(
        workers=0, parsing_flip=True, source_parser=str(parser), parsing_ensemble=True))
    image, pose, big = _inputs(own)
    with torch.inference_mode():
        a, b = own.source_parsing_probs(image, pose), alone.source_parsing_probs(image, pose, big)
        mixed = both.source_parsing_probs(image, pose, big)
    torch.testing.assert_close(mixed, (a + b) * 0.5)
    assert not torch.allclose(a, b, atol=1e-3)  # two different networks: the mean is neither
    # without a source parser the setting changes nothing
    lone = GLocalPipeline.from_pretrained(weights, device="cpu", config=InferConfig(
        workers=0, parsing_flip=True, parsing_ensemble=True))
    with torch.inference_mode():
        torch.testing.assert_close(lone.source_parsing_probs(image, pose), a)


def test_the_refine_stays_out_of_a_hole(folders) -> None:
    weights, _ = folders
    pipe = GLocalPipeline.from_pretrained(weights, device="cpu", config=InferConfig(workers=0, parsing_refine=True))
    image, pose, _ = _inputs(pipe, seed=1)
    h, w = pipe.frame_hw
    hole = torch.zeros(2, 1, h, w)
    hole[:, :, h // 4:h // 2, w // 4:w // 2] = 1
    with torch.inference_mode():
        raw = pipe.source_parsing_probs(image, pose, refine=False)
        out = pipe.refine_parsing(raw, image, hole)
    inside = hole.bool().expand_as(raw)
    torch.testing.assert_close(out[inside], raw[inside])
    refined = snap_person(raw, image, refine_radius(h))
    torch.testing.assert_close(out[~inside], refined[~inside])
    assert not torch.allclose(refined[inside], raw[inside])  # the refine would have changed the hole


def test_the_fill_mixes_by_the_networks_probabilities_and_the_labels_are_refined(folders) -> None:
    weights, _ = folders
    plain = GLocalPipeline.from_pretrained(weights, device="cpu", config=InferConfig(workers=0))
    refined = GLocalPipeline.from_pretrained(weights, device="cpu", config=InferConfig(workers=0, parsing_refine=True))
    photo = np.asarray(np.random.default_rng(0).integers(0, 256, (80, 60, 3)), np.uint8)
    pose = standing_pose(80, 60)
    hole = np.zeros((80, 60), bool)
    hole[30:50, 20:40] = True
    outs = []
    for pipe in (plain, refined):
        forward = pipe.forward_batch

        def spy(*args, _forward=forward, **kwargs):
            outs.append(_forward(*args, **kwargs))
            return outs[-1]

        pipe.forward_batch = spy
    a = plain.inpaint(photo, hole, source_pose=pose, return_details=True)
    b = refined.inpaint(photo, hole, source_pose=pose, return_details=True)
    assert outs[0].fill_probs is not None
    torch.testing.assert_close(outs[1].fill_probs, outs[0].fill_probs)  # the fill: the network's probabilities
    assert not np.array_equal(a.parsing, b.parsing)  # the labels: refined


def _with_settings(src, dest, settings) -> None:
    shutil.copytree(src, dest)
    meta = json.loads((dest / "config.json").read_text())
    meta["infer"] = settings
    (dest / "config.json").write_text(json.dumps(meta))


def test_weights_recommend_their_settings(folders, tmp_path) -> None:
    weights, parser = folders
    shutil_parser = tmp_path / "parser"
    shutil.copytree(parser, shutil_parser)
    rec = tmp_path / "recommending"
    _with_settings(weights, rec, {"parsing_flip": True, "parsing_ensemble": True, "source_parser": "../parser"})
    settings = weights_settings(rec)
    assert settings["source_parser"] == str(shutil_parser.resolve())  # relative: beside the weights
    pipe = GLocalPipeline.from_pretrained(rec, device="cpu")
    assert pipe.config.parsing_flip and pipe.config.parsing_ensemble and pipe.parser_scale == 2
    # a config given to the API is used as it is
    assert not GLocalPipeline.from_pretrained(rec, device="cpu", config=InferConfig()).config.parsing_flip
    # the CLI: defaults < the weights' settings < config file / --set < options
    assert infer_config(None, [], rec, "inpaint").parsing_ensemble
    assert not infer_config(None, ["infer.parsing_flip=false"], rec, "inpaint").parsing_flip
    assert infer_config(None, ["infer.parsing_flip=false"], rec, "inpaint").parsing_ensemble
    assert infer_config(None, [], rec, "inpaint", batch_size=3).batch_size == 3
    assert not infer_config(None, [], weights, "inpaint").parsing_flip  # weights that recommend nothing


def test_bad_recommended_settings_name_the_file(folders, tmp_path) -> None:
    weights, _ = folders
    bad = tmp_path / "bad"
    _with_settings(weights, bad, {"parsing_flipp": True})
    with pytest.raises(WeightsError, match=r"config\.json.*parsing_flipp"):
        weights_settings(bad)
    worse = tmp_path / "worse"
    _with_settings(weights, worse, {"inpaint_fill": "nearest"})
    with pytest.raises(WeightsError, match="inpaint_fill"):
        GLocalPipeline.from_pretrained(worse, device="cpu")


def test_labels_of_the_ensemble_follow_the_person_first(folders) -> None:
    weights, parser = folders
    pipe = GLocalPipeline.from_pretrained(weights, device="cpu", config=InferConfig(
        workers=0, source_parser=str(parser), parsing_ensemble=True, parsing_refine=True))
    image, pose, big = _inputs(pipe, seed=2)
    with torch.inference_mode():
        probs = pipe.source_parsing_probs(image, pose, big)
        onehot = pipe.estimate_source_parsing(image, pose, big)
    assert torch.equal(onehot.argmax(1), parsing_labels(probs, person_first=True))
    assert torch.equal(onehot, F.one_hot(onehot.argmax(1), 8).permute(0, 3, 1, 2).to(onehot.dtype))
