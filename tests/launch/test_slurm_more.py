"""More integration checks on the real local SLURM: array splitting, gentle polling, the CLI,
the local-cluster script's idempotence, and the local executor fallback."""

from __future__ import annotations

import subprocess
import time

import pytest

from hpc_seg.cli import main
from hpc_seg.launch import submit as submit_mod
from hpc_seg.launch.config import LaunchConfig
from hpc_seg.launch.lineage import Lineage
from hpc_seg.launch.status import SacctCache
from hpc_seg.launch.submit import gather, submit_array, submit_ddp, wait_job
from tests.launch.conftest import REPO, wait_until
from tests.launch.jobfns import add, sleep_then, square_or_fail

SMALL = dict(executor="slurm", time_min=5, mem_gb=0.25, signal_delay_s=30)


@pytest.mark.slurm
@pytest.mark.usefixtures("slurm_cluster")
def test_array_longer_than_max_array_size_is_split(tmp_path, monkeypatch):
    monkeypatch.setattr(submit_mod, "max_array_size", lambda: 4)
    specs = [{"x": i} for i in range(6)]
    run = submit_array(square_or_fail, specs, LaunchConfig(array_parallelism=4, **SMALL), tmp_path)
    arrays = {j.job_id.split("_")[0] for j in run.jobs}
    assert len(arrays) == 2  # 4 + 2 tasks
    assert [o.result for o in gather(run, timeout_s=120)] == [i * i for i in range(6)]
    rows = Lineage(tmp_path).rows()
    assert sorted(r["task_index"] for r in rows) == list(range(6))


@pytest.mark.slurm
@pytest.mark.usefixtures("slurm_cluster")
def test_status_cache_calls_sacct_once_per_interval_and_backs_off(tmp_path):
    job = submit_ddp(add, (2, 3), LaunchConfig(**SMALL), tmp_path, name="add")
    ids = [job.job_id, "999999"]
    cache = SacctCache(min_interval_s=0.5, max_interval_s=2.0, factor=2.0)
    for _ in range(50):  # a tight loop of queries costs one sacct call
        cache.infos(ids)
    assert cache.calls == 1
    wait_until(lambda: cache.infos(ids).get(job.job_id) and cache.infos(ids)[job.job_id].terminal,
               60, "job end in sacct")
    calls = cache.calls
    for _ in range(3):  # nothing changes any more: the interval grows to its maximum
        time.sleep(cache.interval_s + 0.05)
        cache.infos(["999999"])
    assert cache.interval_s == 2.0 and cache.calls == calls + 3
    assert wait_job(job, timeout_s=30) == [5]


@pytest.mark.slurm
@pytest.mark.usefixtures("slurm_cluster")
def test_jobs_cli_list_status_logs_cancel(tmp_path, capsys):
    job = submit_ddp(sleep_then, (120,), LaunchConfig(**SMALL), tmp_path, name="sleeper")
    cache = SacctCache(min_interval_s=0.5)
    wait_until(lambda: (cache.infos([job.job_id]).get(job.job_id) or None) and
               cache.infos([job.job_id])[job.job_id].state == "RUNNING", 60, "RUNNING")
    assert main(["jobs", "cancel", str(tmp_path), "--all"]) == 0
    assert job.job_id in capsys.readouterr().out
    t0 = time.monotonic()

    def cli_state() -> bool:
        main(["jobs", "status", str(tmp_path)])
        return "CANCELLED" in capsys.readouterr().out

    wait_until(cli_state, 20, "`jobs status` to say CANCELLED", step=0.5)
    assert time.monotonic() - t0 < 20
    assert main(["jobs", "list", str(tmp_path), "--state", "cancelled"]) == 0
    assert job.job_id in capsys.readouterr().out
    assert main(["jobs", "logs", str(tmp_path), job.job_id, "--err"]) == 0
    assert "CANCELLED" in capsys.readouterr().out
    assert main(["jobs", "logs", str(tmp_path), "nope"]) == 2
    assert "no job 'nope' in the lineage" in capsys.readouterr().err


@pytest.mark.slurm
@pytest.mark.usefixtures("slurm_cluster")
def test_local_cluster_up_is_fast_when_running():
    t0 = time.monotonic()
    out = subprocess.run([str(REPO / "slurm" / "local-cluster"), "up"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "already up" in out.stderr and time.monotonic() - t0 < 5
    status = subprocess.run([str(REPO / "slurm" / "local-cluster"), "status"], capture_output=True,
                            text=True, timeout=60)
    assert status.returncode == 0 and status.stdout.strip().endswith("healthy")
    for daemon in ("munged", "mariadbd", "slurmdbd", "slurmctld", "slurmd"):
        assert f"{daemon}" in status.stdout and "stopped" not in status.stdout


def test_local_executor_runs_an_array_with_failures(tmp_path):
    specs = [{"x": 2}, {"x": 3, "fail": True}]
    run = submit_array(square_or_fail, specs, LaunchConfig(executor="local", time_min=5), tmp_path,
                       name="local")
    outs = gather(run, timeout_s=120)
    assert outs[0].ok and outs[0].result == 4
    assert not outs[1].ok and "intentional failure for x=3" in outs[1].error
    states = [r["state"] for r in Lineage(tmp_path).rows()]
    assert states == ["COMPLETED", "FAILED"]


def test_local_executor_runs_two_rank_gloo_job(tmp_path):
    """Users without SLURM: the same submit_ddp call runs both ranks locally."""
    from tests.launch.jobfns import allreduce_ranks_local

    job = submit_ddp(allreduce_ranks_local, (), LaunchConfig(executor="local", tasks_per_node=2,
                                                              time_min=5), tmp_path, name="local-ddp")
    results = wait_job(job, timeout_s=120)
    assert sorted(r["rank"] for r in results) == [0, 1]
    assert all(r["world_size"] == 2 and r["sum"] == 3.0 for r in results)
