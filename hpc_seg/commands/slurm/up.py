"""``hpc-seg slurm up``: a thin wrapper around ``slurm/local-cluster up``."""

from __future__ import annotations

import argparse

NAME = "up"
HELP = "install (if missing) and start the local real SLURM; health-check it (idempotent)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--nodes", type=int, default=1,
                        help="1 (default): this machine is the node; 2..9: one network namespace "
                             "per node, each with its own address, host name and /tmp "
                             "(switching cancels every job)")


def run(args: argparse.Namespace) -> int:
    from hpc_seg.commands.slurm._script import run_local_cluster

    return run_local_cluster("up", "--nodes", str(args.nodes))
