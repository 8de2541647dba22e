"""``hpc-seg slurm down``: a thin wrapper around ``slurm/local-cluster down``."""

from __future__ import annotations

import argparse

NAME = "down"
HELP = "stop the local SLURM daemons (munge, MariaDB, slurmdbd, slurmctld, slurmd) by PID"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    from hpc_seg.commands.slurm._script import run_local_cluster

    return run_local_cluster("down")
