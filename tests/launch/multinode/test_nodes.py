"""The two-node local SLURM: two nodes with their own host names, addresses and /tmp."""

from __future__ import annotations

import subprocess
import uuid

import pytest

pytestmark = [pytest.mark.slurm, pytest.mark.multinode]


def test_srun_on_two_nodes_answers_two_hosts_and_addresses(two_nodes):
    out = subprocess.run(["srun", "-N2", "-n2", "--ntasks-per-node=1", "bash", "-c",
                          'echo "$(hostname) $(hostname -I)"'],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    rows = sorted(line.split() for line in out.splitlines())
    assert [r[0] for r in rows] == ["n1", "n2"]
    assert [r[1:] for r in rows] == [["10.77.0.11"], ["10.77.0.12"]]


def test_each_node_has_its_own_tmp(two_nodes):
    name = f"/tmp/hpc-seg-node-local-{uuid.uuid4().hex[:8]}"
    subprocess.run(["srun", "-N1", "-w", "n1", "touch", name], check=True, timeout=60)
    try:
        seen = subprocess.run(["srun", "-N1", "-w", "n2", "test", "-e", name], timeout=60)
        assert seen.returncode == 1, "n2 sees a file that n1 wrote into its /tmp"
    finally:
        subprocess.run(["srun", "-N1", "-w", "n1", "rm", "-f", name], timeout=60)
