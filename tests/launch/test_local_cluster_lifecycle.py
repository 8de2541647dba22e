"""`slurm/local-cluster down` then `up` on the real cluster.

Opt-in (HPC_SEG_TEST_SLURM_LIFECYCLE=1): the cluster is shared by everyone's tests on a dev
machine, and taking it down under them would fail their jobs. CI can set the variable.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "slurm" / "local-cluster"
DAEMONS = {"slurmctld", "slurmd", "slurmdbd", "slurmstepd", "munged", "mariadbd"}

pytestmark = [
    pytest.mark.slurm,
    pytest.mark.skipif(os.environ.get("HPC_SEG_TEST_SLURM_LIFECYCLE") != "1",
                       reason="takes the shared cluster down; set HPC_SEG_TEST_SLURM_LIFECYCLE=1"),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
]


def live_daemons() -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            comm = (proc / "comm").read_text().strip()
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if comm in DAEMONS and state != "Z":
            found.append(f"{comm}({proc.name})")
    return found


def test_down_leaves_nothing_and_up_comes_back_healthy():
    down = subprocess.run([str(SCRIPT), "down"], capture_output=True, text=True, timeout=120)
    assert down.returncode == 0, down.stderr
    assert live_daemons() == []
    assert subprocess.run([str(SCRIPT), "status"], capture_output=True).returncode == 1
    t0 = time.monotonic()
    up = subprocess.run([str(SCRIPT), "up"], capture_output=True, text=True, timeout=600)
    assert up.returncode == 0, up.stderr
    assert "COMPLETED in sacct" in up.stderr
    t1 = time.monotonic()
    again = subprocess.run([str(SCRIPT), "up"], capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and "already up" in again.stderr
    assert time.monotonic() - t1 < 5
    print(f"down+up: up took {t1 - t0:.1f}s")
