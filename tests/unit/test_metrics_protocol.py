"""Protocol registry, metric selection, frame alignment and the eval config section."""

from __future__ import annotations

import numpy as np
import pytest

from glocal_cli.errors import ConfigError, InputError
from glocal_cli.metrics.protocol import PROTOCOLS, align_pair, get_protocol, select_metrics


def test_every_protocol_is_documented_and_labelled():
    assert set(PROTOCOLS) == {"clean", "paper", "gfla", "pise", "pidm"}
    for proto in PROTOCOLS.values():
        assert proto.follows and proto.title
        for key in proto.metrics:
            assert proto.label(key) and proto.recipe(key)
        if "psnr_uint8_wraparound" in proto.metrics:
            assert "uint8-wraparound" in proto.label("psnr_uint8_wraparound")
            assert "wrap" in proto.recipe("psnr_uint8_wraparound")
    assert PROTOCOLS["paper"].metrics == ("fid", "is", "ssim", "psnr_uint8_wraparound")
    assert "176-wide images padded with white to 256" in PROTOCOLS["paper"].recipe("ssim")
    assert PROTOCOLS["clean"].png_only and "psnr" in PROTOCOLS["clean"].metrics


def test_unknown_protocol_and_metric_selection():
    with pytest.raises(ConfigError, match="did you mean 'pise'"):
        get_protocol("pisee")
    pise = get_protocol("pise")
    assert select_metrics(pise, None) == pise.metrics
    assert select_metrics(pise, ["psnr_uint8_wraparound", "ssim"]) == ("ssim", "psnr_uint8_wraparound")
    with pytest.raises(ConfigError, match="not in protocol 'pise'"):
        select_metrics(pise, ["psnr"])


def test_align_pair_crops_padded_references_only_where_allowed():
    gen = np.zeros((256, 176, 3), np.uint8)
    ref = np.full((256, 256, 3), 255, np.uint8)
    ref[:, 40:216] = 7
    g, r = align_pair(gen, ref, get_protocol("pise"))
    assert r.shape == gen.shape and (r == 7).all()
    with pytest.raises(InputError, match=r"x\.png: generated image is 256x176 but its reference is 256x256"):
        align_pair(gen, ref, get_protocol("clean"), "x.png")
    same = align_pair(gen, gen, get_protocol("clean"))
    assert same[0] is gen


def test_eval_config_section_through_the_config_tree():
    from glocal_cli.config import resolve_config

    cfg = resolve_config(None, ["eval.protocol=pise", "eval.metrics=[ssim, psnr_uint8_wraparound]"]).eval
    assert cfg.protocol == "pise" and cfg.metrics == ("ssim", "psnr_uint8_wraparound")
    with pytest.raises(ConfigError):
        resolve_config(None, ["eval.protocol=papper"])
    with pytest.raises(ConfigError):
        resolve_config(None, ["eval.batch_size=0"])
