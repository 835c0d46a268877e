"""The typed config tree: presets, overrides, type checks, unknown keys, saving."""

from __future__ import annotations

import json
from dataclasses import FrozenInstanceError

import pytest
import yaml

from glocal_cli.config import (
    GLocalConfig,
    config_from_dict,
    list_presets,
    resolve_config,
    save_config,
    to_dict,
)
from glocal_cli.config.docs import field_docs
from glocal_cli.config.io import describe_fields
from glocal_cli.errors import ConfigError


def test_presets_shipped_and_valid():
    names = list_presets()
    for required in ("tiny", "synthetic-64", "market-128", "deepfashion-256"):
        assert required in names
    for name in names:
        cfg = resolve_config(name)
        assert isinstance(cfg, GLocalConfig)
    assert resolve_config("market-128").data.size == (128, 64)
    assert resolve_config("deepfashion-256").data.size == (256, 176)


def test_defaults_are_frozen():
    cfg = resolve_config()
    with pytest.raises(FrozenInstanceError):
        cfg.data.height = 3  # type: ignore[misc]


def test_set_overrides_with_types():
    cfg = resolve_config("tiny", ["data.height=64", "data.pose_sigma=3", "data.pin_memory=false"])
    assert cfg.data.height == 64
    assert cfg.data.pose_sigma == 3.0 and isinstance(cfg.data.pose_sigma, float)
    assert cfg.data.pin_memory is False


def test_unknown_key_has_path_and_suggestion():
    with pytest.raises(ConfigError, match=r"unknown key 'data\.heigth'.*did you mean 'data\.height'"):
        resolve_config(None, ["data.heigth=64"])
    with pytest.raises(ConfigError, match=r"unknown key 'dat'.*did you mean 'data'"):
        resolve_config(None, ["dat.height=64"])


def test_type_errors_name_the_key():
    with pytest.raises(ConfigError, match=r"data\.height = 'big'"):
        resolve_config(None, ["data.height=big"])
    with pytest.raises(ConfigError, match=r"data\.pin_memory"):
        resolve_config(None, ["data.pin_memory=3"])
    with pytest.raises(ConfigError, match=r"data\.resample = 'cubic'.*did you mean 'bicubic'"):
        resolve_config(None, ["data.resample=cubic"])


def test_validation_in_post_init_is_reported():
    with pytest.raises(ConfigError, match="multiples of 4"):
        resolve_config(None, ["data.height=30"])


def test_bad_override_syntax():
    with pytest.raises(ConfigError, match="expected section.key=value"):
        resolve_config(None, ["data.height"])


def test_yaml_file_and_unknown_preset(tmp_path):
    f = tmp_path / "my.yaml"
    f.write_text("data:\n  height: 128\n  width: 64\n")
    assert resolve_config(str(f)).data.size == (128, 64)
    bad = tmp_path / "bad.yaml"
    bad.write_text("data:\n  hieght: 1\n")
    with pytest.raises(ConfigError, match=rf"{bad}.*unknown key 'data\.hieght'"):
        resolve_config(str(bad))
    with pytest.raises(ConfigError, match="did you mean preset 'tiny'"):
        resolve_config("tinny")
    notmap = tmp_path / "list.yaml"
    notmap.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        resolve_config(str(notmap))


def test_yaml_is_read_safely(tmp_path):
    evil = tmp_path / "evil.yaml"
    evil.write_text("data: !!python/object/apply:os.system ['echo hacked']\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        resolve_config(str(evil))


def test_save_and_reload_roundtrip(tmp_path):
    cfg = resolve_config("synthetic-64", ["data.flip_prob=0.25"])
    path = save_config(cfg, tmp_path / "config.yaml")
    again = resolve_config(str(path))
    assert again == cfg
    jpath = save_config(cfg, tmp_path / "config.json")
    assert config_from_dict(GLocalConfig, json.loads(jpath.read_text())) == cfg
    assert yaml.safe_load(path.read_text()) == to_dict(cfg)


def test_every_field_has_a_docstring():
    rows = describe_fields(GLocalConfig)
    missing = [key for key, _, _, doc in rows if not doc]
    assert not missing, f"config fields without a docstring: {missing}"
    assert "height" in field_docs(type(resolve_config().data))


def test_fixed_length_tuple_fields_roundtrip():
    from dataclasses import dataclass

    from glocal_cli.config.io import load_config

    @dataclass(frozen=True)
    class Pair:
        betas: tuple[float, float] = (0.5, 0.999)
        """Adam betas."""

        def __post_init__(self) -> None:
            if self.betas[0] > self.betas[1]:
                raise ValueError("betas must be increasing")

    assert load_config(Pair, None, ["betas=[0.1, 0.2]"]).betas == (0.1, 0.2)
    with pytest.raises(ConfigError, match="needs 2 items"):
        load_config(Pair, None, ["betas=[0.1]"])
    with pytest.raises(ConfigError, match=r"betas\[1\]"):
        load_config(Pair, None, ["betas=[0.1, x]"])
    # a cross-field check is judged after all overrides, but still enforced
    with pytest.raises(ConfigError, match="increasing"):
        load_config(Pair, None, ["betas=[0.9, 0.1]"])
