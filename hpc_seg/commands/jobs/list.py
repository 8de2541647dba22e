"""``hpc-seg jobs list RUN``: the lineage table of a run folder (one row per submitted task)."""

from __future__ import annotations

import argparse

from hpc_seg.commands.jobs._run_folder import add_run_argument

NAME = "list"
HELP = "list the tasks a run submitted (lineage: job id, state, node, times, exit reason)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_run_argument(parser)
    parser.add_argument("--name", default=None, help="only this array/job name")
    parser.add_argument("--state", default=None, help="only rows in this state, e.g. FAILED")


def run(args: argparse.Namespace) -> int:
    from hpc_seg.commands.jobs._run_folder import run_and_ids
    from hpc_seg.launch.jobs_view import print_rows
    from hpc_seg.launch.lineage import Lineage

    folder, _ = run_and_ids(args)
    rows = Lineage.open_existing(folder).refresh(force=True)
    rows = [r for r in rows if (args.name is None or r["name"] == args.name)
            and (args.state is None or r["state"] == args.state.upper())]
    print_rows(rows)
    return 0
