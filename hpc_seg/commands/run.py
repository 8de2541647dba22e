"""``hpc-seg run JOB.toml``: run a job definition's stages in order, resuming finished ones."""

from __future__ import annotations

import argparse

from hpc_seg.options import BoolOption

NAME = "run"
HELP = "run the stages of a job definition (jobs/*.toml) in order; finished stages are skipped"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job", metavar="JOB", help="job definition, e.g. jobs/demo.toml")
    parser.add_argument("--out", default=None,
                        help="output root (default: [job] out, else runs/<job name>)")
    parser.add_argument("--force", action="append", default=[], metavar="STAGE",
                        help="re-run this stage even if it finished (repeatable)")
    parser.add_argument("--only", action="append", default=[], metavar="STAGE",
                        help="run only these stages (repeatable); earlier results are loaded")
    parser.add_argument("--list", action=BoolOption, default=False,
                        help="list the job's stages and exit")


def run(args: argparse.Namespace) -> int:
    from hpc_seg.logs import quiet_console
    from hpc_seg.pipeline.job import run_job

    quiet_console(args.verbose)

    return run_job(args.job, out=args.out, force=args.force, only=args.only, list_only=args.list)
