"""The 2-rank gloo distillation as a real submitit job on the local SLURM (1 node x 2 tasks).

It must give the same weights as one process accumulating the same 2 samples per step.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from hpc_seg.launch.config import LaunchConfig
from hpc_seg.launch.lineage import Lineage
from hpc_seg.hadnet.dispatch import run_ranks
from hpc_seg.hadnet.train.config import HadnetTrainConfig
from hpc_seg.hadnet.train.data import toy_cases
from hpc_seg.hadnet.models.io import file_sha256
from hpc_seg.hadnet.train.run import MemorySource, run_distill, run_pretrain
from tests.hadnet.train.test_ddp import assert_same_training

pytestmark = [pytest.mark.slurm,
              pytest.mark.skipif(shutil.which("srun") is None, reason="no local SLURM (srun)")]

SHAPE = (32, 32, 32)


def check_distill_job(root: Path, launch: LaunchConfig) -> dict:
    """Distil as a SLURM job of ``launch``'s shape (2 ranks in all) under ``root``; the weights
    must equal one process accumulating the same 2 samples per step. Returns the lineage row."""
    source = MemorySource(train=toy_cases(4, SHAPE, seed=0), val=toy_cases(2, SHAPE, seed=1),
                          pad_size=list(SHAPE))
    cfg = HadnetTrainConfig(k=4, epochs=1, distill_epochs=2, device="cpu", seed=5, threads=1)
    teacher = run_pretrain(cfg, source, root / "teacher", "teacher")
    student = run_pretrain(cfg, source, root / "student", "student")
    run_distill(cfg.with_(grad_accum=2), source, teacher, student, root / "single", "had")
    out = root / "slurm"
    inputs = {"teacher_sha256": file_sha256(teacher), "student_sha256": file_sha256(student)}
    best = run_ranks(run_distill, (cfg, source, teacher, student, out, "had"), launch, out,
                     name="test-hadnet-ddp", lineage=inputs)
    assert best == out / "best.pt"
    record = json.loads((out / "job.json").read_text())
    assert record["executor"] == "slurm" and record["job_id"]
    assert (record["nodes"], record["tasks_per_node"]) == (launch.nodes, launch.tasks_per_node)
    rows = Lineage(out).rows()
    assert [r["job_id"] for r in rows] == [record["job_id"]] and rows[0]["state"] == "COMPLETED"
    assert json.loads(rows[0]["inputs"]) == inputs  # the checkpoints the job started from
    assert json.loads((out / "summary.json").read_text())["world_size"] == 2
    assert_same_training(root / "single", out)
    return rows[0]


def test_slurm_two_task_distill_equals_single_process(tmp_path):
    check_distill_job(tmp_path, LaunchConfig(executor="slurm", nodes=1, tasks_per_node=2,
                                             cpus_per_task=1, mem_gb=2, time_min=5))
