"""Typed, validated job definitions loaded from ``jobs/*.toml``.

Each stage owns a ``@dataclass(kw_only=True)`` config. :func:`from_dict` builds one from a TOML
table and fails with an error naming the file, the key path and the valid keys, the way submitit
checks its parameters on arrival.

Conventions for every config: a field is documented by the string literal under it (an attribute
docstring, as torchtitan does); ``__post_init__`` raises :class:`ConfigError` naming the key
(``"lr must be > 0, but got -1"``), and :func:`from_dict` puts the file and table in front.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from hpc_seg.errors import ConfigError

T = TypeVar("T")
log = logging.getLogger(__name__)


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML file, turning I/O and syntax errors into one-line :class:`ConfigError`."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: job file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not a job file (give a .toml file)") from None
    except PermissionError:
        raise ConfigError(f"{path}: permission denied") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the job file: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not a text (TOML) file: {exc.reason}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None


def from_dict(cls: type[T], data: dict[str, Any], where: str = "") -> T:
    """Build dataclass ``cls`` from ``data``, recursing into nested dataclass fields.

    ``where`` is a prefix for error messages, e.g. ``"jobs/demo.toml: [tune]"``.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a table, but got {type(data).__name__} {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    renamed = {old: new for old, new in getattr(cls, "RENAMED_KEYS", {}).items() if old in data}
    if renamed:   # a job file written for an earlier version: read it, and say the new key
        data = dict(data)
        for old, new in renamed.items():
            log.warning("%s: key %s is now called %s", where or cls.__name__, old, new)
            data.setdefault(new, data.pop(old))
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; valid keys are {sorted(fields)}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _coerce(hints[name], value, f"{where}.{name}" if where else name)
    missing = [n for n, f in fields.items() if n not in kwargs
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ConfigError(f"{where}: missing required key(s) {missing}")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError, ConfigError) as exc:
        if not where or str(exc).startswith(where):
            raise ConfigError(str(exc)) from None
        raise ConfigError(f"{where}: {exc}") from None


def typed_value(hint: Any, value: Any, where: str) -> Any:
    """``value`` checked (and converted, int to float) against the type ``hint``; a
    :class:`ConfigError` naming ``where`` when it does not fit."""
    return _coerce(hint, value, where)


def _coerce(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, where)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(arg, value, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{where}: bad value {value!r}")
    if origin is typing.Literal:
        allowed = typing.get_args(hint)
        if value not in allowed:
            raise ConfigError(f"{where}: must be one of {list(allowed)}, but got {value!r}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, but got {value!r}")
        args = typing.get_args(hint)
        if origin is tuple and args and Ellipsis not in args:
            if len(value) != len(args):
                raise ConfigError(f"{where}: expected {len(args)} values, but got {len(value)}: "
                                  f"{value}")
            return tuple(_coerce(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
        item = args[0] if args else Any
        out = [_coerce(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(out) if origin is tuple else out
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table, but got {value!r}")
        return dict(value)
    if hint is Any:
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is Path and isinstance(value, str):
        return Path(value)
    if isinstance(hint, type) and not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        raise ConfigError(f"{where}: expected {hint.__name__}, but got {value!r}")
    return value


def to_dict(obj: Any) -> dict[str, Any]:
    """A JSON-friendly dict of a config dataclass (Paths become strings)."""
    return json.loads(json.dumps(dataclasses.asdict(obj), default=str))


def config_hash(obj: Any) -> str:
    """A short stable hash of a config, used to name runs and in lineage records."""
    blob = json.dumps(to_dict(obj) if dataclasses.is_dataclass(obj) else obj, sort_keys=True,
                      default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]
