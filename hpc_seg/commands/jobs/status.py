"""``hpc-seg jobs status RUN [JOB_ID ...]``: the current state of jobs of a run (one cached sacct call)."""

from __future__ import annotations

import argparse

from hpc_seg.commands.jobs._run_folder import add_run_argument

NAME = "status"
HELP = "state of jobs of a run folder (all of them, or the given job ids)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_run_argument(parser, "*", "job ids (default: every job of the run)")


def run(args: argparse.Namespace) -> int:
    from hpc_seg.commands.jobs._run_folder import run_and_ids
    from hpc_seg.launch.jobs_view import find_row, print_rows
    from hpc_seg.launch.lineage import Lineage

    folder, ids = run_and_ids(args)
    if ids:
        rows = [find_row(folder, j) for j in ids]
    else:
        rows = Lineage.open_existing(folder).refresh(force=True)
    print_rows(rows, ("job_id", "name", "task_index", "state", "node", "restarts", "exit_reason"))
    return 0
