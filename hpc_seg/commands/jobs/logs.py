"""``hpc-seg jobs logs``: the stdout or stderr of one task of a run."""

from __future__ import annotations

import argparse

NAME = "logs"
HELP = "print a task's log (stdout by default; --err for stderr)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job_id", help="job id as in `hpc-seg jobs list` (e.g. 123_4)")
    parser.add_argument("--folder", required=True, help="run folder holding lineage.sqlite")
    parser.add_argument("--err", action="store_true", help="stderr instead of stdout")
    parser.add_argument("--tail", type=int, default=0, help="only the last N lines (0: all)")


def run(args: argparse.Namespace) -> int:
    from hpc_seg.launch.jobs_view import find_row, read_log

    row = find_row(args.folder, args.job_id)
    print(read_log(row, "stderr" if args.err else "stdout", args.tail))
    return 0
