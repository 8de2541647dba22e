"""The run folder every ``hpc-seg jobs`` command reads: its first positional argument ``RUN``.

``--folder RUN`` was its earlier spelling and keeps working: the positionals after it are then
the job ids.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hpc_seg.options import add_renamed

HELP = "run folder holding lineage.sqlite (the output folder of the run that submitted)"


def add_run_argument(parser: argparse.ArgumentParser, ids: str | None = None,
                     ids_help: str = "") -> None:
    """``RUN`` and, with ``ids`` (``"*"`` or ``"+"``), the job ids after it."""
    parser.add_argument("run", nargs="?", metavar="RUN", default=None, help=HELP)
    if ids:
        parser.add_argument("job_ids", nargs="*", metavar="JOB_ID", help=ids_help)
    add_renamed(parser, "--folder", "the positional argument RUN", "folder")


def run_and_ids(args: argparse.Namespace) -> tuple[Path, list[str]]:
    """``(RUN, job ids)`` from either spelling; a one-line error without a run folder."""
    from hpc_seg.errors import ConfigError

    ids = list(getattr(args, "job_ids", []) or [])
    folder = getattr(args, "folder", None)
    if folder is not None:          # old spelling: every positional is a job id
        ids = ([args.run] if args.run else []) + ids
        return Path(folder), ids
    if not args.run:
        raise ConfigError("the argument RUN (the run folder) is required")
    return Path(args.run), ids
