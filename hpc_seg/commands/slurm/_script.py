"""Shared by ``hpc-seg slurm up|down|status``: run ``slurm/local-cluster`` from the repository."""

from __future__ import annotations

import subprocess
from pathlib import Path

from hpc_seg.errors import LaunchError

SCRIPT = Path(__file__).resolve().parents[3] / "slurm" / "local-cluster"


def run_local_cluster(action: str, *options: str) -> int:
    """Run ``slurm/local-cluster ACTION [OPTIONS]``, streaming its output; returns its exit status."""
    if not SCRIPT.is_file():
        raise LaunchError(f"{SCRIPT}: not found (the local cluster script ships with the source "
                          "checkout, not with an installed wheel)")
    return subprocess.run([str(SCRIPT), action, *options], check=False).returncode
