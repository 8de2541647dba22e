"""``hpc-seg slurm status``: a thin wrapper around ``slurm/local-cluster status``."""

from __future__ import annotations

import argparse

NAME = "status"
HELP = "show whether each local SLURM daemon runs and the node state (exit 0 when healthy)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    from hpc_seg.commands.slurm._script import run_local_cluster

    return run_local_cluster("status")
