"""``hpc-seg jobs resubmit RUN``: re-run only the failed tasks of an array run."""

from __future__ import annotations

import argparse

from hpc_seg.commands.jobs._run_folder import add_run_argument
from hpc_seg.options import BoolOption

NAME = "resubmit"
HELP = "resubmit the failed tasks of a run's array (same specs, same config); --wait to gather"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_run_argument(parser)
    parser.add_argument("--name", default=None, help="array name (needed if the run has several)")
    parser.add_argument("--wait", action=BoolOption, default=False,
                        help="wait and print each task's outcome")


def run(args: argparse.Namespace) -> int:
    from hpc_seg.commands.jobs._run_folder import run_and_ids
    from hpc_seg.launch.jobs_view import print_rows
    from hpc_seg.launch.submit import ArrayRun, gather, resubmit_failed

    folder, _ = run_and_ids(args)
    old = ArrayRun.load(folder, args.name)
    new = resubmit_failed(old)
    changed = [i for i, (a, b) in enumerate(zip(old.jobs, new.jobs)) if a.job_id != b.job_id]
    print(f"resubmitted {len(changed)} task(s): " +
          ", ".join(f"{i} -> {new.jobs[i].job_id}" for i in changed))
    if args.wait:
        outs = gather(new)
        print_rows([{"task_index": o.index, "job_id": o.job_id, "state": o.state,
                     "error": o.error_line} for o in outs],
                   ("task_index", "job_id", "state", "error"))
        return 0 if all(o.ok for o in outs) else 1
    return 0
