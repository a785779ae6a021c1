"""A config from JSON (and `--set` overrides) into the frozen dataclasses of
`srgan.config.schema`: unknown keys, wrong types and impossible values raise `ConfigError`
naming the key before any work; renamed keys of older configs and checkpoints are read as the
new ones.
"""

import dataclasses
import difflib
import json
import math
import types
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from srgan.config.schema import Config, ConfigError, check_config
from srgan.files import atomic_write_text

# Keys that were renamed: older configs and checkpoints still use the old name, read as the new.
RENAMED_KEYS = {
    ("gan", "stages"): "lr_phases",
    ("gan", "content_layer"): "content_loss",
}


def upgrade_keys(values: dict) -> dict:
    """A copy of a config dict (JSON, or one stored in a checkpoint) with renamed keys moved to
    their current names; naming both the old and the new key is an error."""
    values = json.loads(json.dumps(values))
    for (section, old), new in RENAMED_KEYS.items():
        part = values.get(section)
        if isinstance(part, dict) and old in part:
            if new in part:
                raise ConfigError(f"{section}.{old}: is the old name of {section}.{new}; use one")
            part[new] = part.pop(old)
    return values


def with_defaults(values: dict) -> dict:
    """A stored config dict (renamed keys upgraded) with the keys added since it was saved set
    to their defaults, which keep the behaviour of before they existed: a resume compares
    like with like."""
    return _merge(config_to_dict(Config()), upgrade_keys(values))


def _merge(defaults: dict, values: dict) -> dict:
    merged = dict(defaults)
    for key, value in values.items():
        known = defaults.get(key)
        merged[key] = (
            _merge(known, value) if isinstance(known, dict) and isinstance(value, dict) else value
        )
    return merged


def _convert(value: Any, annotation: Any, key: str) -> Any:
    """Check `value` (parsed JSON) against a type annotation and build the typed value."""
    origin = get_origin(annotation)
    if dataclasses.is_dataclass(annotation):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected an object, got {json.dumps(value)}")
        return _build(annotation, value, key)
    if origin is Literal:
        if value not in get_args(annotation):
            choices = ", ".join(json.dumps(choice) for choice in get_args(annotation))
            raise ConfigError(f"{key}: must be one of {choices}, got {json.dumps(value)}")
        return value
    if origin is tuple:
        arguments = get_args(annotation)
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key}: expected a list, got {json.dumps(value)}")
        if len(arguments) == 2 and arguments[1] is Ellipsis:
            return tuple(
                _convert(item, arguments[0], f"{key}[{i}]") for i, item in enumerate(value)
            )
        if len(value) != len(arguments):
            raise ConfigError(f"{key}: expected {len(arguments)} values, got {len(value)}")
        return tuple(
            _convert(v, a, f"{key}[{i}]")
            for i, (v, a) in enumerate(zip(value, arguments, strict=True))
        )
    if origin in (Union, types.UnionType):
        raise TypeError(f"{key}: union types are not supported in the config")
    # JSON has no int/bool distinction from Python's point of view (bool is an int): be strict.
    if annotation is bool and isinstance(value, bool):
        return value
    if annotation is int and isinstance(value, int) and not isinstance(value, bool):
        if abs(value) >= 2**63:  # would overflow a C long in torch/numpy later
            raise ConfigError(f"{key}: {value} is out of range")
        return value
    if annotation is float and isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value):  # JSON's Infinity and NaN parse as floats
            raise ConfigError(f"{key}: must be a finite number, got {value}")
        return float(value)
    if annotation is str and isinstance(value, str):
        return value
    raise ConfigError(f"{key}: expected {annotation.__name__}, got {json.dumps(value)}")


def _build(cls: type, values: dict, prefix: str) -> Any:
    hints = get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key in values:
        if key not in names:
            raise _unknown_key(key, names, prefix)
    kwargs = {}
    for name in values.keys() & names:
        kwargs[name] = _convert(
            values[name], hints[name], f"{prefix + '.' if prefix else ''}{name}"
        )
    try:
        return cls(**kwargs)
    except TypeError as error:  # a required field (LrPhase) is missing
        raise ConfigError(f"{prefix}: {error}") from None


def _unknown_key(key: str, names: list[str], prefix: str) -> ConfigError:
    """The error for `key`, naming the closest known key of its section (a typo's fix)."""
    section = f"{prefix}." if prefix else ""
    closest = difflib.get_close_matches(key, names, n=1)
    hint = f" (did you mean {section}{closest[0]}?)" if closest else ""
    return ConfigError(f"{section}{key}: unknown key{hint}")


def parse_override(text: str) -> tuple[list[str], Any]:
    """`pretrain.lr=2e-4` -> (["pretrain", "lr"], 2e-4); the value is JSON, or a bare string."""
    if "=" not in text:
        raise ConfigError(f"--set {text}: expected key.path=value")
    key, raw = text.split("=", 1)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key.strip().split("."), value


def load_config(
    path: str | Path | None, overrides: list[str] = (), check_paths: bool = True
) -> Config:
    """Read a JSON config (defaults when `path` is None), apply `--set` overrides, check."""
    values: dict = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        try:
            values = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise ConfigError(
                f"{path}: invalid JSON at line {error.lineno}, column {error.colno}: {error.msg}"
            ) from None
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: the top level must be a JSON object")
    values = upgrade_keys(values)
    for override in overrides:
        keys, value = parse_override(override)
        if len(keys) >= 2 and tuple(keys[:2]) in RENAMED_KEYS:
            keys[1] = RENAMED_KEYS[tuple(keys[:2])]
        target = values
        for key in keys[:-1]:
            target = target.setdefault(key, {})
            if not isinstance(target, dict):
                raise ConfigError(f"--set {override}: {key} is not a section")
        target[keys[-1]] = value
    config = _build(Config, values, "")
    check_config(config, check_paths)
    return config


def config_to_dict(config: Config) -> dict:
    """Plain JSON-able dict (tuples become lists), as saved with every run and checkpoint."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def save_config(config: Config, path: Path) -> None:
    """Write the resolved config atomically and durably: a full disk or a kill leaves the
    previous file whole (`WriteError` names the file), never an empty or partial one."""
    atomic_write_text(Path(path), json.dumps(config_to_dict(config), indent=2) + "\n", durable=True)
