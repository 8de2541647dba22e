"""Command-line options every command shares, and the flags derived from config dataclasses.

The conventions (``tests/commands/test_conventions.py`` walks every command's ``--help`` for them):

- **Config**: a setting lives in one ``@dataclass`` config whose fields are flags
  (:mod:`hpc_seg.config_flags`).
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
import sys
import tomllib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from hpc_seg.config import load_toml
from hpc_seg.errors import ConfigError

#: words a user may type for a boolean in a job-file-like value (``--amp false`` was once allowed)
_BOOL_WORDS = {"true": True, "false": False, "yes": True, "no": False, "on": True, "off": False,
               "1": True, "0": False}

JOB_METAVAR = "JOB.toml"


# ---------------------------------------------------------------------------------------------
# values
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
