"""``infer.source_parser``: another weights folder's semantic network estimates the source parsing."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from glocal_cli.errors import ConfigError
from glocal_cli.infer.config import InferConfig
from glocal_cli.infer.pipeline import GLocalPipeline
from tests.infer_helpers import save_tiny_weights


def test_source_parser_replaces_the_estimate_only(tmp_path):
    main = save_tiny_weights(tmp_path / "main", seed=0)
    parser = save_tiny_weights(tmp_path / "parser", seed=1)
    plain = GLocalPipeline.from_pretrained(main, device="cpu", config=InferConfig(workers=0))
    cfg = dataclasses.replace(InferConfig(workers=0), source_parser=str(parser))
    pipe = GLocalPipeline.from_pretrained(main, device="cpu", config=cfg)
    other = GLocalPipeline.from_pretrained(parser, device="cpu", config=InferConfig(workers=0))
    h, w = pipe.frame_hw
    g = torch.Generator().manual_seed(0)
    image = torch.rand(2, 3, h, w, generator=g) * 2 - 1
    pose = torch.rand(2, 18, h, w, generator=g)
    with torch.inference_mode():
        got = pipe.estimate_source_parsing(image, pose)
        assert torch.equal(got, other.model.estimate_source_parsing(image, pose))
        assert not torch.equal(got, plain.estimate_source_parsing(image, pose))
    # the transfer model itself is untouched
    for (k, a), b in zip(pipe.model.state_dict().items(), plain.model.state_dict().values()):
        assert torch.equal(a, b), k
    import json

    cfg_path = tmp_path / "parser" / "config.json"
    meta = json.loads(cfg_path.read_text())
    meta["frame"]["height"], meta["frame"]["width"] = 48, 36  # 1.5 times the weights' frame
    cfg_path.write_text(json.dumps(meta))
    bad = GLocalPipeline.from_pretrained(main, device="cpu", config=cfg)
    with pytest.raises(ConfigError, match="frame"):
        bad.estimate_source_parsing(image, pose)


def test_parsing_flip_sees_the_photo_and_its_mirror_alike(tmp_path):
    """``infer.parsing_flip``: the estimate of a mirrored photo (poses mirrored, left and right swapped) is the
    mirror image of the photo's estimate, which a single pass of an untrained network is not."""
    from glocal_cli.data.keypoints import FLIP_PERMUTATION

    main = save_tiny_weights(tmp_path / "main", seed=0)
    flip = GLocalPipeline.from_pretrained(main, device="cpu",
                                          config=dataclasses.replace(InferConfig(workers=0), parsing_flip=True))
    plain = GLocalPipeline.from_pretrained(main, device="cpu", config=InferConfig(workers=0))
    h, w = flip.frame_hw
    g = torch.Generator().manual_seed(3)
    image = torch.rand(2, 3, h, w, generator=g) * 2 - 1
    pose = torch.rand(2, 18, h, w, generator=g)
    mirrored_image, mirrored_pose = image.flip(-1), pose[:, list(FLIP_PERMUTATION)].flip(-1)
    with torch.inference_mode():
        a = flip.estimate_source_parsing(image, pose)
        b = flip.estimate_source_parsing(mirrored_image, mirrored_pose)
        agree = (a.argmax(1) == b.argmax(1).flip(-1)).float().mean()
        p = plain.estimate_source_parsing(image, pose)
        q = plain.estimate_source_parsing(mirrored_image, mirrored_pose)
        plain_agree = (p.argmax(1) == q.argmax(1).flip(-1)).float().mean()
    assert agree > 0.99 > plain_agree  # ties aside, the flip estimate is mirror-symmetric
    assert a.shape == p.shape and torch.equal(a.sum(1), torch.ones_like(a.sum(1)))
