"""``hpc-seg jobs logs RUN JOB_ID``: the stdout or stderr of one task of a run."""

from __future__ import annotations

import argparse

from hpc_seg.commands.jobs._run_folder import add_run_argument
from hpc_seg.options import BoolOption

NAME = "logs"
HELP = "print a task's log (stdout by default; --err for stderr)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_run_argument(parser, "*", "job id as in `hpc-seg jobs list` (e.g. 123_4)")
    parser.add_argument("--err", action=BoolOption, default=False,
                        help="stderr instead of stdout")
    parser.add_argument("--tail", type=int, default=0, help="only the last N lines (0: all)")


def run(args: argparse.Namespace) -> int:
    from hpc_seg.commands.jobs._run_folder import run_and_ids
    from hpc_seg.errors import ConfigError
    from hpc_seg.launch.jobs_view import find_row, read_log

    folder, ids = run_and_ids(args)
    if len(ids) != 1:
        raise ConfigError(f"jobs logs: name one job id, but got {len(ids)}: {' '.join(ids)}")
    row = find_row(folder, ids[0])
    print(read_log(row, "stderr" if args.err else "stdout", args.tail))
    return 0
