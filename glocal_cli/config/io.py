"""Reading, validating, overriding and saving the typed config tree.

* YAML is read with ``yaml.safe_load`` only.
* Every key is checked against the dataclass tree; an unknown key is rejected with its full
  dotted path and a did-you-mean suggestion.
* Values are type-checked (int, float, bool, str, tuples, ``Literal`` choices, ``Optional``).
* ``--set a.b=c`` overrides parse ``c`` as a YAML scalar/list, then go through the same checks.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from importlib import resources
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

import yaml

from glocal_cli.config.docs import field_docs
from glocal_cli.console import warn
from glocal_cli.errors import ConfigError

T = TypeVar("T")

PRESET_DIR = "presets"


def list_presets() -> list[str]:
    """Names of the YAML presets shipped in the package."""
    root = resources.files("glocal_cli.config") / PRESET_DIR
    return sorted(p.name[: -len(".yaml")] for p in root.iterdir() if p.name.endswith(".yaml"))


def _read_yaml(source: str | Path) -> tuple[dict[str, Any], str]:
    """Read a preset name or a YAML file; returns (mapping, label used in messages)."""
    text: str
    label: str
    path = Path(source)
    if str(source) in list_presets():
        label = f"preset '{source}'"
        text = (resources.files("glocal_cli.config") / PRESET_DIR / f"{source}.yaml").read_text()
    elif path.is_file():
        label = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read config file ({exc})") from exc
    else:
        close = difflib.get_close_matches(str(source), list_presets(), n=1)
        hint = f"; did you mean preset '{close[0]}'?" if close else ""
        raise ConfigError(
            f"{source}: no such config file or preset (presets: {', '.join(list_presets())}){hint}"
        )
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{label}: invalid YAML ({str(exc).splitlines()[0]})") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{label}: the top level must be a mapping of sections")
    return data, label


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " | ".join(_type_name(a) for a in get_args(tp))
    if origin is tuple:
        args = get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return f"list of {_type_name(args[0])}"
        return "list of " + ", ".join(_type_name(a) for a in args)
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, path: str, label: str) -> Any:
    """Check ``value`` against type ``tp``; return the (possibly converted) value."""
    origin = get_origin(tp)
    bad = ConfigError(f"{label}: {path} = {value!r} is not a valid {_type_name(tp)}")
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{label}: {path} must be a mapping (section), got {value!r}")
        return _build(tp, value, path, label)
    if origin is Literal:
        if value in get_args(tp):
            return value
        close = difflib.get_close_matches(str(value), [str(a) for a in get_args(tp)], n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(
            f"{label}: {path} = {value!r} is not one of {_type_name(tp)}{hint}"
        )
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, path, label)
            except ConfigError:
                continue
        raise bad
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise bad
        args = get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{path}[{i}]", label) for i, v in enumerate(value))
        if len(args) != len(value):
            raise ConfigError(f"{label}: {path} needs {len(args)} items, got {len(value)}")
        return tuple(_coerce(v, a, f"{path}[{i}]", label) for i, (v, a) in enumerate(zip(value, args)))
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise bad
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise bad
        return value
    raise ConfigError(f"{label}: {path}: unsupported field type {tp!r}")


_RETIRED_SEEN: set[str] = set()
"""Retired keys already warned about in this process (a config is resolved more than once per command)."""


class _InvalidValues(ConfigError):
    """Raised when every key and type is fine but the section's own validation rejects the values."""


def _build(cls: type[T], data: dict[str, Any], prefix: str, label: str) -> T:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {}
    retired: dict[str, str] = getattr(cls, "RETIRED", {})
    for key, value in data.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if key in retired:  # a setting that was removed: old run configs still load (and say so, once)
            if path not in _RETIRED_SEEN:
                _RETIRED_SEEN.add(path)
                warn(f"{label}: '{path}' is no longer a setting ({retired[key]}); ignored")
            continue
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f"; did you mean '{(prefix + '.' if prefix else '') + close[0]}'?" if close else ""
            raise ConfigError(f"{label}: unknown key '{path}'{hint}")
        kwargs[key] = _coerce(value, hints[key], path, label)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise _InvalidValues(f"{label}: {prefix or 'config'}: {exc}") from exc


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def to_dict(cfg: Any) -> Any:
    """A plain (YAML/JSON-serialisable) view of a config dataclass."""
    if dataclasses.is_dataclass(cfg):
        return {f.name: to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, tuple):
        return [to_dict(v) for v in cfg]
    return cfg


def parse_override(item: str) -> dict[str, Any]:
    """``'a.b.c=value'`` -> ``{'a': {'b': {'c': value}}}`` with ``value`` read as YAML."""
    if "=" not in item:
        raise ConfigError(f"--set {item!r}: expected section.key=value")
    key, raw = item.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set {item!r}: empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() != "" else ""
    except yaml.YAMLError:
        value = raw
    nested: dict[str, Any] = {}
    cursor = nested
    parts = key.split(".")
    for part in parts[:-1]:
        cursor[part] = {}
        cursor = cursor[part]
    cursor[parts[-1]] = value
    return nested


def load_config(
    cls: type[T],
    source: str | Path | None = None,
    overrides: typing.Sequence[str] = (),
    base: dict[str, Any] | None = None,
) -> T:
    """Build a config of type ``cls`` from defaults, an optional preset/file and ``--set`` items.

    Order: dataclass defaults < ``base`` (e.g. a weights folder's saved config) < ``source``
    < ``overrides``. Every layer is validated with its own label in error messages.
    """
    data: dict[str, Any] = {}
    if base:
        _build(cls, base, "", "saved config")
        data = _merge(data, base)
    if source is not None:
        file_data, label = _read_yaml(source)
        _build(cls, file_data, "", label)  # validate with the file's own label
        data = _merge(data, file_data)
    for item in overrides:
        one = parse_override(item)
        try:
            _build(cls, _merge(data, one), "", f"--set {item}")
        except _InvalidValues:
            # Cross-field checks (e.g. two lists that must have the same length) are judged once
            # every override is applied, so related keys can be changed by separate --set items.
            pass
        data = _merge(data, one)
    return _build(cls, data, "", "config")


def config_from_dict(cls: type[T], data: dict[str, Any], label: str = "config") -> T:
    """Validate and build a config from a plain mapping (e.g. a saved ``config.json``)."""
    return _build(cls, data, "", label)


def save_config(cfg: Any, path: str | Path) -> Path:
    """Write the resolved config as YAML (``.yaml``/``.yml``) or JSON (anything else)."""
    import json

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    plain = to_dict(cfg)
    tmp = path.with_name(path.name + ".tmp")
    if path.suffix in (".yaml", ".yml"):
        tmp.write_text(yaml.safe_dump(plain, sort_keys=False))
    else:
        tmp.write_text(json.dumps(plain, indent=2) + "\n")
    tmp.replace(path)
    return path


def describe_fields(cls: type, prefix: str = "") -> list[tuple[str, str, Any, str]]:
    """(dotted key, type, default, docstring) for every leaf field: used by ``glocal info --config``."""
    rows: list[tuple[str, str, Any, str]] = []
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    inst = cls()
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(tp):
            rows.extend(describe_fields(tp, key + "."))
        else:
            rows.append((key, _type_name(tp), to_dict(getattr(inst, f.name)), docs.get(f.name, "")))
    return rows
