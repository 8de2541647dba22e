"""``hpc-seg slurm up``: a thin wrapper around ``slurm/local-cluster up``."""

from __future__ import annotations

import argparse

NAME = "up"
HELP = "install (if missing) and start the local real SLURM; health-check it (idempotent)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    from hpc_seg.commands.slurm._script import run_local_cluster

    return run_local_cluster("up")
