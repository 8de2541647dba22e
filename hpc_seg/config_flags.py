"""Command-line flags derived from config dataclasses: one way to build a command's config.

:func:`add_config_options` makes a flag of every field of a config, ``--field-name``, whose help is
the field's attribute docstring (the string literal under it), and :func:`config_from_options`
builds the config from, in increasing priority, the dataclass defaults (or a named preset), the job
file's table and the flags given. A new field is a new flag with its help text; nothing else needs
an edit. The conventions the flags follow are those of :mod:`hpc_seg.options`.

Imports only the standard library and the ground: the CLI builds every command's parser for
``hpc-seg --help``.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import functools
import sys
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from hpc_seg.config import from_dict
from hpc_seg.errors import ConfigError
from hpc_seg.options import (BoolOption, add_renamed, job_table, job_tables, parse_pairs,
                             parse_toml_value)

T = TypeVar("T")


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    """``typing.get_type_hints`` of a config class, once per class (several commands share one)."""
    return typing.get_type_hints(cls)


@functools.cache
def _module_classes(path: str) -> dict[str, ast.ClassDef]:
    """The class definitions of a source file by qualified name (each file parsed once: this
    runs for every config class when the CLI builds its parsers)."""
    try:
        tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return {}
    found: dict[str, ast.ClassDef] = {}

    def walk(body: list[ast.stmt], prefix: str) -> None:
        for node in body:
            if isinstance(node, ast.ClassDef):
                found[prefix + node.name] = node
                walk(node.body, f"{prefix}{node.name}.")

    walk(tree.body, "")
    return found


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """``{field: help}`` from the attribute docstrings (the string literal under a field) of a
    dataclass and its dataclass bases; white space folded to single spaces."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        path = getattr(sys.modules.get(klass.__module__), "__file__", None)
        node = _module_classes(path).get(klass.__qualname__) if path else None
        if node is None:
            continue
        for field, after in zip(node.body, node.body[1:]):
            if (isinstance(field, ast.AnnAssign) and isinstance(field.target, ast.Name)
                    and isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
                    and isinstance(after.value.value, str)):
                docs[field.target.id] = " ".join(after.value.value.split())
    return docs


def flag_name(field: str, prefix: str = "") -> str:
    """The option of a config field: ``lr`` -> ``--lr``, ``max_matrix`` -> ``--max-matrix``."""
    return "--" + (prefix + field).replace("_", "-").replace(".", "-")


# ---------------------------------------------------------------------------------------------
# flags
# ---------------------------------------------------------------------------------------------


def _strip_optional(hint: Any) -> Any:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return hint


def _scalar(hint: Any) -> Callable[[str], Any] | None:
    if hint in (int, float, str):
        return hint
    if hint is Path:
        return str        # from_dict makes the Path; the value stays what the user typed
    return None


def _list_value(item: Callable[[str], Any]) -> Callable[[list[str]], list[Any]]:
    """Tokens of a list flag: ``--x 1 2 3``, the TOML ``--x '[1, 2, 3]'`` or, for a token
    without white space, ``--x 1,2,3`` (a shell line with a comma stays one item)."""
    def convert(tokens: list[str]) -> list[Any]:
        if len(tokens) == 1 and tokens[0].lstrip().startswith("["):
            value = parse_toml_value(tokens[0])
            if isinstance(value, list):
                return value
        parts = [p for t in tokens
                 for p in (t.split(",") if "," in t and not any(c.isspace() for c in t) else [t])
                 if p != ""]
        return [item(p) for p in parts]
    return convert


def _dict_value(hint: Any) -> Callable[[str], Any]:
    """Converter of the VALUE in ``--field NAME=VALUE`` for a ``dict[str, X]`` field."""
    args = typing.get_args(hint)
    value_hint = _strip_optional(args[1]) if len(args) == 2 else Any
    scalar = _scalar(value_hint)
    if scalar is not None:
        return scalar
    if typing.get_origin(value_hint) in (list, tuple):
        item = _scalar((typing.get_args(value_hint) or (str,))[0]) or parse_toml_value
        return lambda text: _list_value(item)([text])
    return parse_toml_value


@dataclasses.dataclass(frozen=True)
class _Flag:
    """How one config field is read from the command line."""

    table: str
    path: tuple[str, ...]       # field names from the config down to this field
    kind: str                   # "value", "list", "dict"
    convert: Callable[..., Any] | None = None


_FLAGS = "_config_flags"
_TAKEN = "_config_taken"
_CLASSES = "_config_classes"


def _default_text(f: dataclasses.Field) -> str:
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    else:
        return "required"
    if value is None or value == "" or value == {} or value == []:
        return ""
    if isinstance(value, bool):
        return "default on" if value else "default off"
    if isinstance(value, (list, tuple)):
        value = " ".join(map(str, value))
    if isinstance(value, dict):
        value = ", ".join(f"{k}={v}" for k, v in value.items())
    return f"default {value}"


def add_config_options(parser: argparse.ArgumentParser | argparse._ArgumentGroup, cls: type,
                       *, table: str, taken: dict[str, str] | None = None, prefix: str = "",
                       renamed: dict[str, str] | None = None, _path: tuple[str, ...] = ()) -> None:
    """One ``--field-name`` option per field of dataclass ``cls`` (help: its docstring).

    ``table`` names the job-file table the config comes from (``train``, ``hadnet``...), which
    also keeps two configs of one command apart. ``taken`` maps fields the command takes another
    way to that argument (``{"src": "SRC"}``: a positional path); ``prefix`` is put before every flag name (``--asha-``);
    ``renamed`` maps old flags to fields (``{"--frames": "n_frames"}``): they keep working,
    hidden, with a warning. Nested dataclass fields become ``--field-sub-field``.
    """
    # an argument group shares its parser's defaults: the flags' record lives there
    flags: dict[str, _Flag] = parser._defaults.setdefault(_FLAGS, {})  # type: ignore[union-attr]
    if not _path:
        parser._defaults.setdefault(_CLASSES, {})[table] = cls  # type: ignore[union-attr]
    docs = field_docs(cls)
    hints = _hints(cls)
    taken = dict(taken or {})
    record: dict[tuple[str, str], str] = parser._defaults.setdefault(  # type: ignore[union-attr]
        _TAKEN, {})
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        if f.name in taken:
            record[(table, ".".join((*_path, f.name)))] = taken[f.name]
            continue
        hint = _strip_optional(hints[f.name])
        path = (*_path, f.name)
        if dataclasses.is_dataclass(hint):
            add_config_options(parser, hint, table=table, prefix=f"{prefix}{f.name}_",
                               _path=path)
            continue
        doc = docs.get(f.name, "")
        default = _default_text(f)
        text = (f"{doc} ({default})" if doc and default else doc or default).replace("%", "%%")
        option = flag_name(f.name, prefix)
        dest = f"{table}:{'.'.join(path)}"
        origin = typing.get_origin(hint)
        kwargs: dict[str, Any] = {"dest": dest, "default": argparse.SUPPRESS, "help": text}
        if hint is bool:
            parser.add_argument(option, action=BoolOption, inverted=f.name.startswith("no_"),
                                **kwargs)
            flags[dest] = _Flag(table, path, "value")
            continue
        if origin is typing.Literal:
            choices = list(typing.get_args(hint))
            kwargs.update(choices=choices, type=type(choices[0]))
            spec = _Flag(table, path, "value")
        elif _scalar(hint) is not None:
            kwargs.update(type=_scalar(hint), metavar=_metavar(f.name, hint))
            spec = _Flag(table, path, "value")
        elif origin in (list, tuple):
            item_hints = [a for a in typing.get_args(hint) if a is not Ellipsis]
            item_hint = _strip_optional(item_hints[0]) if item_hints else str
            if typing.get_origin(item_hint) in (typing.Union, types.UnionType) and all(
                    _scalar(a) for a in typing.get_args(item_hint) if a is not type(None)):
                item_hint = str        # e.g. str | int: the config converts the text
            item = _scalar(item_hint)
            if item is None:       # a list of lists or tables: one TOML value
                kwargs.update(metavar="TOML", type=parse_toml_value)
                spec = _Flag(table, path, "value")
            else:
                # repeatable (a list of shell lines grows line by line); a fixed-length tuple
                # is checked by from_dict
                kwargs.update(nargs="+", action="extend", metavar=_metavar(f.name, item_hint))
                spec = _Flag(table, path, "list", _list_value(item))
        elif origin is dict:
            kwargs.update(action="append", metavar="NAME=VALUE")
            spec = _Flag(table, path, "dict", _dict_value(hint))
        else:                      # Any and other structures: one TOML value
            kwargs.update(metavar="TOML", type=parse_toml_value)
            spec = _Flag(table, path, "value")
        parser.add_argument(option, **kwargs)
        flags[dest] = spec
    for old, name in (renamed or {}).items():
        target = next(f for f in dataclasses.fields(cls) if f.name == name)
        hint = _strip_optional(hints[name])
        new = flag_name(name, prefix)
        dest = f"{table}:{'.'.join((*_path, name))}"
        if hint is bool:
            add_renamed(parser, old, new, dest, nargs=0, const=not target.name.startswith("no_"))
        elif flags[dest].kind == "value":
            add_renamed(parser, old, new, dest, type=_scalar(hint) or parse_toml_value)
        elif flags[dest].kind == "dict":
            add_renamed(parser, old, new, dest, append=True)
        else:
            add_renamed(parser, old, new, dest, nargs="+")


def _metavar(name: str, hint: Any) -> str:
    if hint is Path or (hint is str and name.endswith(("_dir", "_csv", "_path", "_model",
                                                         "checkpoint", "weights"))):
        return "PATH"
    return {int: "N", float: "X"}.get(hint, "TEXT")


def option_values(args: argparse.Namespace, table: str, *,
                  where: str = "command line") -> dict[str, Any]:
    """The values of ``table``'s config flags given on the command line, as a (nested) table
    (``NAME=VALUE`` flags of a dict field as a dict; :func:`config_from_options` merges it into
    the job file's or the default dict)."""
    flags: dict[str, _Flag] = getattr(args, _FLAGS, None) or {}
    out: dict[str, Any] = {}
    for dest, spec in flags.items():
        if spec.table != table or not hasattr(args, dest):
            continue
        raw = getattr(args, dest)
        option = flag_name(".".join(spec.path))
        try:
            if spec.kind == "list":
                value = spec.convert(raw)
            elif spec.kind == "dict":
                value = parse_pairs(raw, option, spec.convert)
            else:
                value = raw
        except (ValueError, argparse.ArgumentTypeError) as exc:
            raise ConfigError(f"{where}: {option}: {exc}") from None
        node = out
        for key in spec.path[:-1]:
            node = node.setdefault(key, {})
        node[spec.path[-1]] = value
    return out


def _merge(base: dict[str, Any], over: dict[str, Any], cls: type) -> dict[str, Any]:
    """``over`` on top of ``base``; nested dataclass tables and dict fields merge key by key
    (a dict field's base is its job-file value, else its default)."""
    merged = dict(base)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = _hints(cls)
    for key, value in over.items():
        hint = _strip_optional(hints.get(key, Any))
        if isinstance(value, dict) and dataclasses.is_dataclass(hint):
            merged[key] = _merge(dict(base.get(key, {})), value, hint)
        elif isinstance(value, dict) and typing.get_origin(hint) is dict:
            f = fields[key]
            start = base.get(key)
            if start is None:
                start = (f.default_factory() if f.default_factory is not dataclasses.MISSING
                         else f.default if f.default is not dataclasses.MISSING else {})
            merged[key] = {**(start or {}), **value}
        else:
            merged[key] = value
    return merged


def config_from_options(cls: type[T], args: argparse.Namespace, *, table: str,
                        tables: dict[str, Any] | None = None, preset: dict[str, Any] | None = None,
                        fixed: dict[str, Any] | None = None, where: str | None = None) -> T:
    """The one way a command builds a config: dataclass defaults, then ``preset``, then the job
    file's ``[table]`` (``tables``, default: ``--job``'s), then the flags given, then ``fixed``
    (values the command takes another way, e.g. a positional path). ``where`` names the job file
    when it is not ``--job`` (error messages say ``FILE: [table] + command line``)."""
    job = where or getattr(args, "job", None)
    tables = job_tables(args) if tables is None else tables
    values = dict(preset or {})
    where = "command line"
    if job:
        values = _merge(values, job_table(tables, table, str(job)), cls)
        where = f"{job}: [{table}] + command line"
    values = _merge(values, option_values(args, table, where=where), cls)
    values.update(fixed or {})
    return from_dict(cls, values, where)


def given(args: argparse.Namespace, table: str, name: str) -> bool:
    """Whether the flag of field ``name`` of ``table``'s config was given."""
    return hasattr(args, f"{table}:{name}")


def config_classes(parser: argparse.ArgumentParser) -> dict[str, type]:
    """``{table: config class}`` of the configs a parser's flags come from (for tests)."""
    return dict(parser._defaults.get(_CLASSES, {}))  # type: ignore[attr-defined]


def config_arguments(parser: argparse.ArgumentParser) -> dict[tuple[str, str], str]:
    """``{(table, field path): argument}`` of a parser's config fields: the derived flag, or the
    argument the command takes that field by (for tests)."""
    flags: dict[str, _Flag] = parser._defaults.get(_FLAGS, {})  # type: ignore[attr-defined]
    out = {(spec.table, ".".join(spec.path)): flag_name(spec.path[-1]) for spec in flags.values()}
    for dest, spec in flags.items():
        for action in parser._actions:  # type: ignore[attr-defined]
            if action.dest == dest and action.help != argparse.SUPPRESS:
                out[(spec.table, ".".join(spec.path))] = action.option_strings[0]
    out.update(parser._defaults.get(_TAKEN, {}))  # type: ignore[attr-defined]
    return out
