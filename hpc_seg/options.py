"""Command-line options every command shares, and the flags derived from config dataclasses.

The conventions (``tests/commands/test_conventions.py`` walks every command's ``--help`` for them):

- **Config**: a setting lives in one ``@dataclass`` config. :func:`add_config_options` makes a flag
  of every field, ``--field-name``, whose help is the field's attribute docstring, and
  :func:`config_from_options` builds the config from, in increasing priority, the dataclass
  defaults (or a named preset), the job file's table and the flags given. A new field is a new
  flag with its help text; nothing else needs an edit.
- **Job file**: ``--job JOB.toml`` names the job definition whose tables give a command's settings
  (the way ``hpc-seg run JOB.toml`` reads them). Commands whose whole input is a job take it as
  their first positional argument instead (``hpc-seg run JOB``, ``hpc-seg tune JOB``).
- **Booleans**: ``--name`` / ``--no-name``, never ``--name false``.
- **Paths**: the paths a command cannot do without are positional, what it reads first and the
  folder it writes last (``SRC OUT``); an optional path is an option named for what it holds, and
  an optional output location is ``--out``.
- Old spellings (``--config``, ``--folder``, ``--workdir``, ...) keep working where that is
  unambiguous, with a warning naming the new spelling; otherwise they fail with that message.

Imports only the standard library and the ground: the CLI builds every command's parser for
``hpc-seg --help``.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import functools
import logging
import sys
import tomllib
import types
import typing
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from hpc_seg.config import from_dict, load_toml
from hpc_seg.errors import ConfigError

log = logging.getLogger("hpc_seg")
T = TypeVar("T")

#: words a user may type for a boolean in a job-file-like value (``--amp false`` was once allowed)
_BOOL_WORDS = {"true": True, "false": False, "yes": True, "no": False, "on": True, "off": False,
               "1": True, "0": False}

JOB_METAVAR = "JOB.toml"


# ---------------------------------------------------------------------------------------------
# field documentation
# ---------------------------------------------------------------------------------------------

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
# value parsing
# ---------------------------------------------------------------------------------------------

def parse_toml_value(text: str) -> Any:
    """A flag value written as TOML (number, boolean, list, inline table) or else a plain string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_bool(text: str) -> bool:
    try:
        return _BOOL_WORDS[text.strip().lower()]
    except KeyError:
        raise argparse.ArgumentTypeError(f"expected true or false, but got {text!r}") from None


def parse_pairs(values: Iterable[str], option: str, convert: Callable[[str], Any] = str,
                example: str = "NAME=VALUE") -> dict[str, Any]:
    """``NAME=VALUE`` arguments of a repeatable option as a dict, in the order given.

    One parser for every such option (``--model NAME=PATH``, ``--quirk-rates NAME=P``, ...): a
    missing ``=``, an empty side, a value ``convert`` rejects, or a name given twice (the later
    would silently replace the earlier) is a :class:`ConfigError` naming the option.
    """
    out: dict[str, Any] = {}
    for item in values:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name or not value.strip():
            raise ConfigError(f"{option} {item}: expected {example}")
        if name in out:
            raise ConfigError(f"{option} {item}: {name} is given twice")
        try:
            out[name] = convert(value.strip())
        except (ValueError, TypeError, argparse.ArgumentTypeError):
            raise ConfigError(f"{option} {item}: cannot read the value {value}") from None
    return out


def model_paths(values: Iterable[str], option: str = "--model") -> dict[str, Path]:
    """``--model NAME=PATH`` (repeatable) as ``{name: Path}``; NAME labels the model's rows."""
    return parse_pairs(values, option, Path, example="NAME=PATH, e.g. teacher=runs/t/best.pt")


# ---------------------------------------------------------------------------------------------
# actions
# ---------------------------------------------------------------------------------------------

class BoolOption(argparse.Action):
    """``--name`` / ``--no-name``: the one boolean style.

    ``inverted`` serves a field that is itself a negation (``no_random_quirks``): its flags are
    ``--no-random-quirks`` (True) and ``--random-quirks`` (False).
    """

    def __init__(self, option_strings: list[str], dest: str, inverted: bool = False,
                 **kwargs: Any) -> None:
        longs = [o for o in option_strings if o.startswith("--")]
        if len(longs) != 1:
            raise ValueError(f"BoolOption takes one --name, not {option_strings}")
        name = longs[0][2:]
        positive = name[3:] if inverted else name
        self.positive = f"--{positive}"
        self.negative = f"--no-{positive}"
        self.inverted = inverted
        shorts = [o for o in option_strings if o not in longs]
        super().__init__([*shorts, self.positive, self.negative], dest, nargs=0, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        on = option_string != self.negative
        setattr(namespace, self.dest, on != self.inverted)

    def format_usage(self) -> str:
        return " | ".join(self.option_strings)


class _Renamed(argparse.Action):
    """A hidden old spelling: stores into the new option's ``dest`` and warns, naming it."""

    def __init__(self, option_strings, dest, new: str = "", const=None, nargs=None,
                 append: bool = False, **kwargs):
        self.new = new
        self.append = append
        super().__init__(option_strings, dest, nargs=nargs, const=const, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        print(f"hpc-seg: warning: {option_string} is now spelt {self.new}", file=sys.stderr)
        if self.nargs == 0:
            values = self.const
        elif isinstance(values, list) and self.nargs is None:
            values = values[0]
        if self.append:
            values = [*(getattr(namespace, self.dest, None) or []), values]
        setattr(namespace, self.dest, values)


class _Moved(argparse.Action):
    """An old spelling that can no longer work: fails with one line naming the new spelling."""

    def __init__(self, option_strings, dest, new: str = "", **kwargs):
        self.new = new
        kwargs.setdefault("nargs", "?")
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        parser.error(f"{option_string} is now spelt {self.new}")


def add_renamed(parser: argparse.ArgumentParser | argparse._ArgumentGroup, old: str, new: str,
                dest: str, nargs: Any = None, const: Any = None, type: Callable | None = None,
                append: bool = False) -> None:
    """Keep ``old`` working as a hidden alias of ``new`` (same ``dest``), with a warning."""
    parser.add_argument(old, dest=dest, action=_Renamed, new=new, nargs=nargs, const=const,
                        type=type, append=append, default=argparse.SUPPRESS,
                        help=argparse.SUPPRESS)


def add_moved(parser: argparse.ArgumentParser, old: str, new: str) -> None:
    """Make ``old`` fail with a one-line message naming ``new``."""
    parser.add_argument(old, action=_Moved, new=new, dest=argparse.SUPPRESS,
                        help=argparse.SUPPRESS)


def add_path_argument(parser: argparse.ArgumentParser, dest: str, metavar: str, help: str,
                      *, old: str | None = None) -> None:
    """A required path as a positional argument. With ``old`` (its earlier option spelling,
    e.g. ``--out``), that spelling keeps working, so the positional is optional to argparse and
    :func:`required_path` insists on one of the two."""
    if old is None:
        parser.add_argument(dest, metavar=metavar, help=help)
        return
    # SUPPRESS: an absent positional must not overwrite what the old spelling stored
    parser.add_argument(dest, nargs="?", metavar=metavar, default=argparse.SUPPRESS, help=help)
    add_renamed(parser, old, f"the positional argument {metavar}", dest)


def required_path(args: argparse.Namespace, dest: str, metavar: str) -> Path:
    """A positional path that :func:`add_path_argument` made optional to argparse."""
    value = getattr(args, dest, None)
    if not value:
        raise ConfigError(f"the argument {metavar} is required")
    return Path(value)


def add_renamed_into(parser: argparse.ArgumentParser, old: str, new: str, dest: str, key: str,
                     convert: Callable[[str], Any] = str) -> None:
    """Keep ``old VALUE`` working, hidden, as the ``key=VALUE`` entry of a dict flag ``new``."""
    parser.add_argument(old, dest=dest, action=_Renamed, new=f"{new} {key}=VALUE", append=True,
                        type=lambda text: f"{key}={convert(text)}", default=argparse.SUPPRESS,
                        help=argparse.SUPPRESS)


# ---------------------------------------------------------------------------------------------
# the job file
# ---------------------------------------------------------------------------------------------

def add_job_option(parser: argparse.ArgumentParser, tables: str) -> None:
    """``--job JOB.toml``: the job definition whose ``tables`` (e.g. ``"[train]"``) give the
    settings; options given on the command line override it. ``--config`` is its old spelling."""
    parser.add_argument("--job", default=None, metavar=JOB_METAVAR,
                        help=f"job definition whose {tables} table(s) give the settings; "
                             "options given here override them")
    add_renamed(parser, "--config", "--job", "job")


def job_tables(args: argparse.Namespace) -> dict[str, Any]:
    """The tables of ``--job`` (empty without one)."""
    job = getattr(args, "job", None)
    return load_toml(job) if job else {}


def job_table(tables: dict[str, Any], name: str, where: str) -> dict[str, Any]:
    """Table ``[name]`` of a job file. A file without tables (keys at its top level, the old
    single-config files) is that table itself."""
    if name in tables:
        value = tables[name]
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: [{name}] must be a table")
        return dict(value)
    if tables and not any(isinstance(v, dict) for v in tables.values()):
        return dict(tables)
    return {}


# ---------------------------------------------------------------------------------------------
# flags derived from a config dataclass
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
            item = _scalar(_strip_optional(item_hints[0])) if item_hints else str
            if item is None:       # a list of lists or tables: one TOML value
                kwargs.update(metavar="TOML", type=parse_toml_value)
                spec = _Flag(table, path, "value")
            else:
                # repeatable (a list of shell lines grows line by line); a fixed-length tuple
                # is checked by from_dict
                kwargs.update(nargs="+", action="extend", metavar=_metavar(f.name, item_hints[0]))
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


def bool_word_error(argv: list[str], extras: list[str]) -> str | None:
    """The message for the old ``--flag true|false`` spelling, which argparse reports as an
    unrecognised argument; None when ``extras`` are something else."""
    for i, token in enumerate(argv[1:], 1):
        prev = argv[i - 1]
        if token in extras and token.lower() in _BOOL_WORDS and prev.startswith("--"):
            on = parse_bool(token)
            name = prev[2:]
            return (f"{prev} {token}: booleans are now --{name} or --no-{name}; "
                    f"give {'--' + name if on else '--no-' + name}")
    return None
