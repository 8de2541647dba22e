"""``hpc-seg jobs list``: the lineage table of a run folder (one row per submitted task)."""

from __future__ import annotations

import argparse

NAME = "list"
HELP = "list the tasks a run submitted (lineage: job id, state, node, times, exit reason)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--folder", required=True, help="run folder holding lineage.sqlite")
    parser.add_argument("--name", default=None, help="only this array/job name")
    parser.add_argument("--state", default=None, help="only rows in this state, e.g. FAILED")


def run(args: argparse.Namespace) -> int:
    from hpc_seg.launch.jobs_view import print_rows
    from hpc_seg.launch.lineage import Lineage

    rows = Lineage.open_existing(args.folder).refresh(force=True)
    rows = [r for r in rows if (args.name is None or r["name"] == args.name)
            and (args.state is None or r["state"] == args.state.upper())]
    print_rows(rows)
    return 0
