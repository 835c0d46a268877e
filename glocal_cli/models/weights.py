"""The weights-folder format: ``config.json`` + one safetensors component per network (strict, hashed).

The layout is described in :mod:`glocal_cli.models.pretrained`; this module reads and writes it for any
``nn.Module`` component and validates the root ``config.json`` (:func:`read_weights_config`). The model classes
build on it (:meth:`glocal_cli.models.generator.GLocalModel.save_pretrained` / ``from_pretrained``).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from torch import nn

from glocal_cli.config.io import config_from_dict
from glocal_cli.errors import ConfigError, WeightsError
from glocal_cli.models.config import ModelConfig

__all__ = ["COMPONENT_FORMAT", "CONFIG_NAME", "FORMAT", "FORMAT_VERSION", "WEIGHTS_NAME", "load_component",
           "read_weights_config", "save_component", "write_json"]

FORMAT = "glocal-weights"
"""``format`` value of a GLocal weights folder's root ``config.json``."""
COMPONENT_FORMAT = "glocal-weights-component"
"""``format`` value of a component's ``config.json``."""
FORMAT_VERSION = 1
"""Version of the weights-folder layout this code reads and writes."""
WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise WeightsError(f"{path}: missing; not a GLocal weights folder")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WeightsError(f"{path}: unreadable JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise WeightsError(f"{path}: expected a JSON object")
    return data


def save_component(module: nn.Module, directory: str | Path, name: str) -> Path:
    """Write ``<directory>/<name>/{model.safetensors, config.json}`` for one module."""
    from safetensors.torch import save_file

    folder = Path(directory) / name
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    weights = folder / WEIGHTS_NAME
    tmp = folder / (WEIGHTS_NAME + ".tmp")
    save_file(state, str(tmp), metadata={"format": COMPONENT_FORMAT, "component": name})
    tmp.replace(weights)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(weights, 0o666 & ~umask)  # safetensors writes 0600; weights are ordinary shared files
    write_json(folder / CONFIG_NAME, {
        "format": COMPONENT_FORMAT, "format_version": FORMAT_VERSION, "component": name,
        "class": type(module).__name__, "num_parameters": sum(p.numel() for p in module.parameters()),
        "sha256": _sha256(weights),
    })
    return folder


def load_component(module: nn.Module, directory: str | Path, name: str) -> nn.Module:
    """Strictly load ``<directory>/<name>`` into ``module`` (checks format, class, hash, keys and shapes)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(directory) / name
    meta = _read_json(folder / CONFIG_NAME)
    if meta.get("format") != COMPONENT_FORMAT or meta.get("component") != name:
        raise WeightsError(f"{folder / CONFIG_NAME}: not a GLocal '{name}' component (format "
                           f"{meta.get('format')!r}, component {meta.get('component')!r})")
    if meta.get("format_version") != FORMAT_VERSION:
        raise WeightsError(f"{folder / CONFIG_NAME}: format_version {meta.get('format_version')!r}, this glocal "
                           f"reads version {FORMAT_VERSION}")
    if meta.get("class") != type(module).__name__:
        raise WeightsError(f"{folder / CONFIG_NAME}: holds a {meta.get('class')!r}, expected {type(module).__name__}")
    weights = folder / WEIGHTS_NAME
    if not weights.is_file():
        raise WeightsError(f"{weights}: missing")
    if meta.get("sha256") and _sha256(weights) != meta["sha256"]:
        raise WeightsError(f"{weights}: checksum mismatch (truncated or modified file)")
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"{weights}: unreadable safetensors file ({exc})") from exc
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise WeightsError(f"{weights}: does not match the {type(module).__name__} built from config.json "
                           f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    for key, value in state.items():
        if tuple(value.shape) != tuple(own[key].shape):
            raise WeightsError(f"{weights}: '{key}' has shape {tuple(value.shape)}, the model expects "
                               f"{tuple(own[key].shape)}")
    module.load_state_dict(state, strict=True)
    return module


def read_weights_config(directory: str | Path) -> tuple[ModelConfig, dict[str, Any]]:
    """Validate ``<directory>/config.json``; returns the saved :class:`ModelConfig` and the raw mapping."""
    directory = Path(directory)
    if not directory.is_dir():
        raise WeightsError(f"{directory}: no such weights folder")
    meta = _read_json(directory / CONFIG_NAME)
    if meta.get("format") != FORMAT:
        hint = meta.get("_class_name") or meta.get("architectures") or meta.get("model_type") or meta.get("format")
        raise WeightsError(f"{directory / CONFIG_NAME}: not a GLocal weights folder (found {hint!r})")
    if meta.get("format_version") != FORMAT_VERSION:
        raise WeightsError(f"{directory / CONFIG_NAME}: format_version {meta.get('format_version')!r}, this glocal "
                           f"reads version {FORMAT_VERSION}")
    try:
        cfg = config_from_dict(ModelConfig, meta.get("model", {}), label=str(directory / CONFIG_NAME))
    except ConfigError as exc:
        raise WeightsError(str(exc)) from exc
    return cfg, meta
