"""`slurm/local-cluster up --nodes 2`: idempotent, and it cleans up after a crashed controller."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.launch.multinode.conftest import SCRIPT

pytestmark = [pytest.mark.slurm, pytest.mark.multinode]


def _up2() -> subprocess.CompletedProcess:
    return subprocess.run([str(SCRIPT), "up", "--nodes", "2"], capture_output=True, text=True,
                          timeout=300)


def test_up_again_is_quick_and_changes_nothing(two_nodes):
    t0 = time.monotonic()
    again = _up2()
    assert again.returncode == 0 and "already up (2 nodes: n1 n2)" in again.stderr, again.stderr
    assert time.monotonic() - t0 < 10
    status = subprocess.run([str(SCRIPT), "status"], capture_output=True, text=True, timeout=60)
    assert status.returncode == 0 and "2 node(s): healthy" in status.stdout
    assert "slurmd-n1" in status.stdout and "slurmd-n2" in status.stdout


def test_up_after_a_controller_crash_removes_the_leftovers_and_rebuilds(two_nodes):
    pid = int(Path("/run/slurmctld.pid").read_text())
    os.kill(pid, signal.SIGKILL)   # a crash: namespaces, slurmds and the mode file stay behind
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and \
            Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    up = _up2()
    assert up.returncode == 0, up.stderr
    assert "removed namespace hpcseg-n1" in up.stderr and "removed namespace hpcseg-n2" in up.stderr
    assert "healthy: srun on n1 n2" in up.stderr
