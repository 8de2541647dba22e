"""``predict --executor slurm``: one array task per stack on the local real SLURM cluster."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from hpc_seg.cardiac.inference.run import PredictConfig, predict
from hpc_seg.launch.config import LaunchConfig
from hpc_seg.launch.lineage import Lineage

pytestmark = [pytest.mark.slurm,
              pytest.mark.skipif(shutil.which("srun") is None, reason="no local SLURM (srun)")]


def test_slurm_array_equals_local(cohort: Path, model: Path, tmp_path: Path) -> None:
    local = predict(model, cohort, tmp_path / "local", PredictConfig(device="cpu", workers=1))
    launch = LaunchConfig(executor="slurm", cpus_per_task=1, mem_gb=2, time_min=10)
    res = predict(model, cohort, tmp_path / "slurm",
                  PredictConfig(device="cpu", workers=1, executor="slurm"), launch=launch)
    assert not res.failed
    a = pd.read_csv(local.summary_csv, dtype={"stack_id": str}).set_index("stack_id")
    b = pd.read_csv(res.summary_csv, dtype={"stack_id": str}).set_index("stack_id")
    pd.testing.assert_frame_equal(a, b)
    rows = Lineage(tmp_path / "slurm" / "jobs").rows()
    assert len(rows) == len(b) and {r["state"] for r in rows} == {"COMPLETED"}
    assert all((tmp_path / "slurm" / sid / "labels.nii.gz").is_file() for sid in b.index)
