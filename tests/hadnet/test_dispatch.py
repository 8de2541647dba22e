"""A rank started by hand (sbatch + srun, torchrun) runs its work in place and never resubmits."""

from __future__ import annotations

import json
from pathlib import Path

from hpc_seg.launch.config import LaunchConfig
from hpc_seg.hadnet.dispatch import run_ranks


def _work(x: int) -> int:
    return x * 2


def test_launched_rank_runs_in_place_even_with_a_slurm_executor(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    launch = LaunchConfig(executor="slurm", nodes=1, tasks_per_node=2)
    assert run_ranks(_work, (21,), launch, tmp_path, name="t") == 42
    record = json.loads((tmp_path / "job.json").read_text())
    assert record["executor"] == "local" and "job_id" not in record
