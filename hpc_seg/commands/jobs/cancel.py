"""``hpc-seg jobs cancel RUN [JOB_ID ...]``: scancel jobs of a run."""

from __future__ import annotations

import argparse

from hpc_seg.commands.jobs._run_folder import add_run_argument
from hpc_seg.options import BoolOption

NAME = "cancel"
HELP = "cancel jobs of a run folder (the given ids, or --all unfinished ones)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_run_argument(parser, "*", "job ids as in `hpc-seg jobs list`")
    parser.add_argument("--all", action=BoolOption, default=False,
                        help="every unfinished SLURM job of the run")


def run(args: argparse.Namespace) -> int:
    import logging

    from hpc_seg.commands.jobs._run_folder import run_and_ids
    from hpc_seg.errors import InputError
    from hpc_seg.launch.jobs_view import cancel

    folder, ids = run_and_ids(args)
    if not ids and not args.all:
        raise InputError("name job ids to cancel, or pass --all")
    done = cancel(folder, ids, args.all)
    logging.getLogger("hpc_seg").info("cancelled %d job(s): %s", len(done), " ".join(done) or "-")
    print(" ".join(done))
    return 0
