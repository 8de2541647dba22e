"""Fixtures for the launch tests: the real local SLURM (slurm/local-cluster up) and a run folder."""

from __future__ import annotations

import os
import subprocess
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


def scontrol_job(job_id: str) -> str:
    return subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True).stdout


def release_requeued(job_id: str, timeout_s: float = 60) -> None:
    """Slurm holds a requeued batch job ~120 s (BeginTime); a test lets it start at once."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        info = scontrol_job(job_id)
        if "JobState=PENDING" in info and "Reason=BeginTime" in info:
            subprocess.run(["scontrol", "update", f"JobId={job_id}", "StartTime=now"], check=True)
            return
        if "JobState=RUNNING" in info and "Restarts=1" in info:
            return
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} was not requeued within {timeout_s}s:\n{scontrol_job(job_id)}")


def wait_until(predicate, timeout_s: float, what: str, step: float = 0.1):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
