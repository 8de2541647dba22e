"""The one ``hpc-seg`` entry point.

Sub-commands are discovered from :mod:`hpc_seg.commands`: a module there is a top-level command, and
a sub-package is a group (``hpc-seg GROUP NAME``) whose ``__init__`` sets ``GROUP`` and
``GROUP_HELP``. A stage adds its command by adding one small module, without editing this file.
A command module defines:

- ``NAME``: the sub-command (``"ingest"``);
- ``HELP``: one line;
- ``add_arguments(parser)``;
- ``run(args) -> int``.

Command modules must import cheaply (argparse, :mod:`hpc_seg.options`,
:mod:`hpc_seg.config_flags` and the light config modules whose dataclasses give their flags); they
import torch/ray inside ``run`` so that ``hpc-seg --help`` answers instantly. The conventions every
command follows (job file, booleans, paths) are in :mod:`hpc_seg.options`.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
from types import ModuleType

from hpc_seg import __version__, commands
from hpc_seg.errors import HpcSegError
from hpc_seg.logs import setup_logging
from hpc_seg.options import BoolOption, bool_word_error

log = logging.getLogger("hpc_seg")



def _command_modules() -> list[tuple[ModuleType, ModuleType | None]]:
    """Every command module, with its group package (``None`` for a top-level command).

    A group is a sub-package of :mod:`hpc_seg.commands` whose ``__init__`` sets ``GROUP`` and
    ``GROUP_HELP``; modules whose name starts with ``_`` are helpers, not commands.
    """
    found: list[tuple[ModuleType, ModuleType | None]] = []
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"{commands.__name__}.{info.name}")
        if not info.ispkg:
            found.append((mod, None))
            continue
        for sub in sorted(pkgutil.iter_modules(mod.__path__), key=lambda i: i.name):
            if not sub.name.startswith("_"):
                found.append((importlib.import_module(f"{mod.__name__}.{sub.name}"), mod))
    return found


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hpc-seg", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"hpc-seg {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    parser.add_argument("-q", "--quiet", action=BoolOption, default=False,
                        help="warnings and errors only")
    top = parser.add_subparsers(dest="command", metavar="COMMAND")
    groups: dict[str, argparse._SubParsersAction] = {}
    for mod, pkg in _command_modules():
        group = pkg.GROUP if pkg is not None else None
        if group:
            if group not in groups:
                gp = top.add_parser(group, help=pkg.GROUP_HELP, description=pkg.GROUP_HELP)
                groups[group] = gp.add_subparsers(dest="subcommand", metavar="SUBCOMMAND")
                gp.set_defaults(_group_parser=gp)
            sub = groups[group].add_parser(mod.NAME, help=mod.HELP, description=mod.HELP)
        else:
            sub = top.add_parser(mod.NAME, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(sub)
        sub.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args, extras = parser.parse_known_args(argv)
    if extras:
        parser.error(bool_word_error(argv, extras)
                     or f"unrecognized arguments: {' '.join(extras)}")
    setup_logging(-1 if args.quiet else args.verbose)
    run = getattr(args, "_run", None)
    if run is None:
        (getattr(args, "_group_parser", None) or parser).print_help()
        return 2
    try:
        return int(run(args) or 0)
    except HpcSegError as exc:
        print(f"hpc-seg: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("hpc-seg: interrupted; finished units are kept, nothing half-written was left",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
