"""``infer.*``: every key in one documented group, every set of choices defined once and checked the same way
whether the config comes from YAML/``--set`` or from Python."""

from __future__ import annotations

import dataclasses

import pytest

from glocal_cli.config import resolve_config
from glocal_cli.errors import ConfigError
from glocal_cli.infer.config import FLOW_MODES, GROUPS, InferConfig


def test_every_key_is_in_exactly_one_group() -> None:
    keys = [f.name for f in dataclasses.fields(InferConfig)]
    grouped = [k for names in GROUPS.values() for k in names]
    assert sorted(grouped) == sorted(keys)
    assert len(grouped) == len(set(grouped))


@pytest.mark.parametrize("key,bad", [("flow", "optical"), ("unseen_fill", "blur"), ("image_format", "gif"),
                                     ("source_parsing", "guess"), ("pose_frame", "box")])
def test_a_choice_is_refused_from_python_and_from_set(key: str, bad: str) -> None:
    with pytest.raises(ValueError, match=key):
        InferConfig(**{key: bad})
    with pytest.raises(ConfigError):
        resolve_config(None, [f"infer.{key}={bad}"])


def test_the_flow_modes_are_the_config_choices() -> None:
    assert FLOW_MODES == ("body3d", "learned", "hybrid")
    for mode in FLOW_MODES:
        assert InferConfig(flow=mode).flow == mode


def test_the_inference_docs_list_every_key() -> None:
    from glocal_cli.paths import REPO_DIR

    text = (REPO_DIR / "docs" / "inference.md").read_text()
    section = text[text.index("## Settings (`infer.*`)"):]
    missing = [f.name for f in dataclasses.fields(InferConfig) if f"| `{f.name}` |" not in section]
    assert not missing, f"docs/inference.md lacks {missing}"


def test_blend_rules_are_not_user_settings_and_check_their_choices() -> None:
    from glocal_cli.infer.config import BlendRules

    cfg = resolve_config(None, ["infer.ghost_fill=model"])  # a retired key: a run saved before still loads
    assert not hasattr(cfg.infer, "ghost_fill")
    with pytest.raises(ConfigError, match="unknown key"):
        resolve_config(None, ["infer.ghost_fil=model"])
    assert BlendRules().ghost_fill == "plate" and BlendRules(ghost_fill="model").ghost_fill == "model"
    for bad in ({"ghost_fill": "wall"}, {"mirror_strength": 2.0}, {"plain_background_spread": -1.0}):
        with pytest.raises(ValueError):
            BlendRules(**bad)
