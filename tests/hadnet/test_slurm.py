"""The 2-rank gloo distillation as a real submitit job on the local SLURM (1 node x 2 tasks).

It must give the same weights as one process accumulating the same 2 samples per step.
"""

from __future__ import annotations

import json
import shutil

import pytest

from hpc_seg.launch.config import LaunchConfig
from hpc_seg.launch.lineage import Lineage
from hpc_seg.hadnet.launch import run_ranks
from hpc_seg.hadnet.train.config import HadnetTrainConfig
from hpc_seg.hadnet.train.data import toy_cases
from hpc_seg.hadnet.models.io import file_sha256
from hpc_seg.hadnet.train.run import MemorySource, run_distill, run_pretrain
from tests.hadnet.train.test_ddp import assert_same_training

pytestmark = [pytest.mark.slurm,
              pytest.mark.skipif(shutil.which("srun") is None, reason="no local SLURM (srun)")]

SHAPE = (32, 32, 32)


def test_slurm_two_task_distill_equals_single_process(tmp_path):
    source = MemorySource(train=toy_cases(4, SHAPE, seed=0), val=toy_cases(2, SHAPE, seed=1),
                          pad_size=list(SHAPE))
    cfg = HadnetTrainConfig(k=4, epochs=1, distill_epochs=2, device="cpu", seed=5, threads=1)
    teacher = run_pretrain(cfg, source, tmp_path / "teacher", "teacher")
    student = run_pretrain(cfg, source, tmp_path / "student", "student")
    run_distill(cfg.with_(grad_accum=2), source, teacher, student, tmp_path / "single", "had")
    launch = LaunchConfig(executor="slurm", nodes=1, tasks_per_node=2, cpus_per_task=1,
                          mem_gb=2, time_min=5)
    out = tmp_path / "slurm"
    inputs = {"teacher_sha256": file_sha256(teacher), "student_sha256": file_sha256(student)}
    best = run_ranks(run_distill, (cfg, source, teacher, student, out, "had"), launch, out,
                     name="test-hadnet-ddp", lineage=inputs)
    assert best == out / "best.pt"
    record = json.loads((out / "job.json").read_text())
    assert record["executor"] == "slurm" and record["tasks_per_node"] == 2 and record["job_id"]
    rows = Lineage(out).rows()
    assert [r["job_id"] for r in rows] == [record["job_id"]] and rows[0]["state"] == "COMPLETED"
    assert json.loads(rows[0]["inputs"]) == inputs  # the checkpoints the job started from
    assert json.loads((out / "summary.json").read_text())["world_size"] == 2
    assert_same_training(tmp_path / "single", out)
