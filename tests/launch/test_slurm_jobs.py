"""Integration tests against the real local SLURM: arrays, DDP, pre-emption, cancel, lineage."""

from __future__ import annotations

import json
import time

import pytest
import torch

from hpc_seg.errors import LaunchError
from hpc_seg.launch.config import LaunchConfig
from hpc_seg.launch.lineage import Lineage
from hpc_seg.launch.status import SacctCache
from hpc_seg.launch.submit import ArrayRun, gather, resubmit_failed, submit_array, submit_ddp, wait_job
from tests.launch.conftest import wait_until
from tests.launch.jobfns import allreduce_ranks, sleep_then, square_or_fail, train_toy

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_cluster")]

SMALL = dict(executor="slurm", time_min=5, mem_gb=0.25, signal_delay_s=30)


def test_array_of_six_with_one_failure_then_resubmit(tmp_path):
    fixed = tmp_path / "fixed"
    specs = [{"x": i, "fail": i == 3, "fixed_marker": str(fixed)} for i in range(6)]
    cfg = LaunchConfig(array_parallelism=2, **SMALL)
    run = submit_array(square_or_fail, specs, cfg, tmp_path, name="squares", config_hash="cafe01")
    outs = gather(run, timeout_s=120)

    assert [o.index for o in outs] == list(range(6))
    assert [o.result for o in outs if o.ok] == [0, 1, 4, 16, 25]
    bad = outs[3]
    assert not bad.ok and bad.state == "FAILED"
    assert "ValueError: intentional failure for x=3" in bad.error and "Traceback" in bad.error
    base = run.jobs[0].job_id.split("_")[0]
    assert [j.job_id for j in run.jobs] == [f"{base}_{i}" for i in range(6)]
    submitted = (tmp_path / "submitit" / f"{base}_submission.sh").read_text()
    assert f"#SBATCH --array=0-5%2" in submitted

    rows = {r["job_id"]: r for r in Lineage(tmp_path).rows()}
    assert rows[f"{base}_3"]["state"] == "FAILED"
    assert rows[f"{base}_3"]["exit_reason"] == "ValueError: intentional failure for x=3"
    assert all(rows[f"{base}_{i}"]["state"] == "COMPLETED" for i in (0, 1, 2, 4, 5))
    assert all(r["node"] and r["started_at"] and r["ended_at"] and r["config_hash"] == "cafe01"
               for r in rows.values())

    fixed.touch()
    # From a fresh handle, as `hpc-seg jobs resubmit` does: only task 3 runs again.
    run2 = resubmit_failed(ArrayRun.load(tmp_path, "squares"))
    assert [j.job_id for j in run2.jobs][:3] == [j.job_id for j in run.jobs][:3]
    assert run2.jobs[3].job_id != run.jobs[3].job_id and run2.attempts[3] == 1
    outs2 = gather(run2, timeout_s=60)
    assert [o.result for o in outs2] == [0, 1, 4, 9, 16, 25]
    rows = Lineage(tmp_path).rows()
    assert len(rows) == 7
    assert [(r["task_index"], r["attempt"], r["state"]) for r in rows if r["task_index"] == 3] == \
        [(3, 0, "FAILED"), (3, 1, "COMPLETED")]


def test_ddp_one_node_two_tasks_gloo(tmp_path):
    cfg = LaunchConfig(nodes=1, tasks_per_node=2, cpus_per_task=1, **SMALL)
    job = submit_ddp(allreduce_ranks, (), cfg, tmp_path, name="allreduce")
    results = wait_job(job, timeout_s=120, run_dir=tmp_path)

    assert [r["rank"] for r in results] == [0, 1]
    assert [r["local_rank"] for r in results] == [0, 1]
    assert [r["slurm_procid"] for r in results] == [0, 1]
    assert all(r["world_size"] == 2 and r["backend"] == "gloo" for r in results)
    assert all(r["sum"] == 3.0 for r in results)  # (0+1) + (1+1)
    # seed + rank: both ranks draw differently, and reproducibly.
    torch.manual_seed(7)
    expect0 = float(torch.rand(1).item())
    torch.manual_seed(8)
    expect1 = float(torch.rand(1).item())
    assert [r["seed_draw"] for r in results] == [expect0, expect1]
    (row,) = Lineage(tmp_path).rows()
    assert row["state"] == "COMPLETED" and row["job_id"] == job.job_id


def test_preempted_training_resumes_to_identical_weights(tmp_path):
    epochs, seed = 5, 11
    reference = train_toy(str(tmp_path / "reference"), epochs, seed)
    ckpt = tmp_path / "ckpt"
    job = submit_ddp(train_toy, (str(ckpt), epochs, seed, 1.0), LaunchConfig(**SMALL), tmp_path,
                     name="toy-train")
    wait_until(lambda: (ckpt / "ckpt-000001.pt").exists(), 60, "epoch 1's checkpoint")
    job._interrupt()  # submitit's pre-emption: SIGTERM + USR2 -> checkpoint() -> scontrol requeue
    # SLURM restarts it once the old credential expires (cred_expire=10 in the local slurm.conf).
    result = wait_job(job, timeout_s=120, run_dir=tmp_path)[0]

    assert result["restarts"] == 1
    assert 2 <= result["first_epoch"] < epochs  # resumed, lost at most the running epoch
    assert torch.equal(result["weight"], reference["weight"])
    assert torch.equal(result["bias"], reference["bias"])
    assert result["loss"] == reference["loss"]
    assert len(list(ckpt.glob("ckpt-*.pt"))) == 2  # rotation keeps the last 2
    assert not list(ckpt.glob(".tmp-*"))
    (row,) = Lineage(tmp_path).rows()
    assert row["restarts"] == 1 and row["state"] == "COMPLETED"
    assert json.loads(row["outputs"]) == [str(ckpt)]


def test_cancelled_job_reports_cancelled_and_wait_raises(tmp_path):
    job = submit_ddp(sleep_then, (120, "never"), LaunchConfig(**SMALL), tmp_path, name="sleeper")
    cache = SacctCache(min_interval_s=0.5)
    wait_until(lambda: cache.infos([job.job_id]).get(job.job_id, None) and
               cache.infos([job.job_id])[job.job_id].state == "RUNNING", 60, "RUNNING in sacct")
    job.cancel()
    t0 = time.monotonic()
    wait_until(lambda: cache.infos([job.job_id])[job.job_id].state == "CANCELLED", 15,
               "CANCELLED in sacct")
    assert time.monotonic() - t0 < 15
    t1 = time.monotonic()
    with pytest.raises(LaunchError, match=r"ended CANCELLED without a result"):
        wait_job(job, timeout_s=60, run_dir=tmp_path)
    assert time.monotonic() - t1 < 10
    (row,) = Lineage(tmp_path).rows()
    assert row["state"] == "CANCELLED" and "CANCELLED" in row["exit_reason"]


def test_executor_slurm_requested_without_cluster_fails_clearly(monkeypatch):
    from hpc_seg.launch import executor

    monkeypatch.setenv("PATH", "/nonexistent")
    executor.detect_slurm.cache_clear()
    try:
        with pytest.raises(LaunchError, match="executor = 'slurm', but there is no SLURM here"):
            executor.resolve_executor(LaunchConfig(executor="slurm"))
        assert executor.resolve_executor(LaunchConfig(executor="auto")) == "local"
    finally:
        executor.detect_slurm.cache_clear()
