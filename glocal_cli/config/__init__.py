"""Typed configuration: dataclass schema, YAML presets and ``--set`` overrides."""

from glocal_cli.config.io import (
    config_from_dict,
    list_presets,
    load_config,
    parse_override,
    save_config,
    to_dict,
)
from glocal_cli.config.schema import GLocalConfig


def resolve_config(source=None, overrides=(), base=None) -> GLocalConfig:
    """The resolved :class:`GLocalConfig` from defaults, a preset/file and ``--set`` items."""
    return load_config(GLocalConfig, source, overrides, base)


__all__ = [
    "GLocalConfig",
    "config_from_dict",
    "list_presets",
    "load_config",
    "parse_override",
    "resolve_config",
    "save_config",
    "to_dict",
]
