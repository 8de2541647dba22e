"""``hpc-seg jobs cancel``: scancel jobs of a run."""

from __future__ import annotations

import argparse

NAME = "cancel"
HELP = "cancel jobs of a run folder (the given ids, or --all unfinished ones)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job_ids", nargs="*", help="job ids as in `hpc-seg jobs list`")
    parser.add_argument("--folder", required=True, help="run folder holding lineage.sqlite")
    parser.add_argument("--all", action="store_true", help="every unfinished SLURM job of the run")


def run(args: argparse.Namespace) -> int:
    import logging

    from hpc_seg.errors import InputError
    from hpc_seg.launch.jobs_view import cancel

    if not args.job_ids and not args.all:
        raise InputError("name job ids to cancel, or pass --all")
    done = cancel(args.folder, args.job_ids, args.all)
    logging.getLogger("hpc_seg").info("cancelled %d job(s): %s", len(done), " ".join(done) or "-")
    print(" ".join(done))
    return 0
