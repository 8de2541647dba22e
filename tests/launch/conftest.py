"""Fixtures for the launch tests: the real local SLURM (slurm/local-cluster up) and a run folder."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def slurm_cluster() -> None:
    """Skip unless the local SLURM answers (`make test` runs `slurm/local-cluster up` first)."""
    from hpc_seg.launch.executor import detect_slurm

    ok, why = detect_slurm()
    if not ok:
        pytest.skip(f"no local SLURM ({why}); run `slurm/local-cluster up` as root")
    # The node runs tasks from the repository root so that tests.launch.jobfns imports there.
    os.chdir(REPO)


def wait_until(predicate, timeout_s: float, what: str, step: float = 0.1):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
