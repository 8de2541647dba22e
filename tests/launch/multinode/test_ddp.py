"""HAD-Net distillation as a 2-node x 1-task gloo DDP job equals one process accumulating."""

from __future__ import annotations

import subprocess

import pytest

from hpc_seg.launch.config import LaunchConfig
from tests.hadnet.test_slurm import check_distill_job

pytestmark = [pytest.mark.slurm, pytest.mark.multinode]


def test_two_node_distill_equals_single_process(two_nodes, shared_dir):
    row = check_distill_job(shared_dir, LaunchConfig(executor="slurm", nodes=2, tasks_per_node=1,
                                                     cpus_per_task=1, mem_gb=2, time_min=5))
    nodes = subprocess.run(["sacct", "-n", "-X", "-P", "-o", "NodeList", "-j", row["job_id"]],
                           capture_output=True, text=True, check=True).stdout.split()
    assert nodes == ["n[1-2]"]
