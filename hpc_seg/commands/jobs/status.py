"""``hpc-seg jobs status``: the current state of jobs of a run (one cached sacct call)."""

from __future__ import annotations

import argparse

NAME = "status"
HELP = "state of jobs of a run folder (all of them, or the given job ids)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job_ids", nargs="*", help="job ids (default: every job of the run)")
    parser.add_argument("--folder", required=True, help="run folder holding lineage.sqlite")


def run(args: argparse.Namespace) -> int:
    from hpc_seg.launch.jobs_view import find_row, print_rows
    from hpc_seg.launch.lineage import Lineage

    if args.job_ids:
        rows = [find_row(args.folder, j) for j in args.job_ids]
    else:
        rows = Lineage.open_existing(args.folder).refresh(force=True)
    print_rows(rows, ("job_id", "name", "task_index", "state", "node", "restarts", "exit_reason"))
    return 0
