"""Jobs that could never start: refused before they are queued, or cancelled as soon as SLURM
gives a reason that never clears; cluster-dependent defaults read from the cluster."""

from __future__ import annotations

import subprocess
import time

import pytest

from hpc_seg.cli import main
from hpc_seg.errors import LaunchError
from hpc_seg.launch.config import LaunchConfig
from hpc_seg.launch.status import JobInfo
from hpc_seg.launch.submit import gather, submit_array, submit_ddp
from tests.launch.jobfns import add, square_or_fail

NODES = """\
NodeName=n1 Arch=x86_64 CoresPerSocket=1  CPUAlloc=0 CPUEfctv=4 CPUTot=4 CPULoad=0.01 AvailableFeatures=(null) ActiveFeatures=(null) Gres=(null) NodeAddr=10.77.0.11 NodeHostName=n1 Version=22.05.8 OS=Linux 6.18 #1 SMP PREEMPT_DYNAMIC @0  RealMemory=10244 AllocMem=0 FreeMem=1000 Sockets=4 Boards=1 State=IDLE ThreadsPerCore=1 TmpDisk=0 Weight=1 Owner=N/A MCS_label=N/A Partitions=debug  BootTime=None
NodeName=g1 CPUTot=32 RealMemory=515000 Gres=gpu:a100:4(S:0-1) State=MIXED Partitions=gpu
"""
PARTITIONS = """\
PartitionName=debug AllowGroups=ALL Default=YES MaxNodes=UNLIMITED MaxTime=UNLIMITED Nodes=n[1-2] State=UP TotalCPUs=8 TRES=cpu=8,mem=20488M,node=2,billing=8
PartitionName=gpu Default=NO MaxNodes=1 MaxTime=2-00:00:00 Nodes=g1 State=UP
"""


def _cluster():
    from hpc_seg.launch.capacity import Cluster, parse_nodes, parse_partitions

    nodes = parse_nodes(NODES + NODES.splitlines()[0].replace("n1", "n2") + "\n")
    return Cluster(nodes, parse_partitions(PARTITIONS))


def _capacity():
    from hpc_seg.launch import capacity

    return capacity


def test_scontrol_output_is_read():
    from hpc_seg.launch.capacity import expand_hostlist

    c = _cluster()
    assert expand_hostlist("n[1-2],gpu[08-10],x") == ["n1", "n2", "gpu08", "gpu09", "gpu10", "x"]
    assert (c.nodes["n1"].cpus, c.nodes["n1"].mem_mb, c.nodes["g1"].gpus) == (4, 10244, 4)
    assert c.partitions["debug"].nodes == ("n1", "n2") and c.default_partition.name == "debug"
    assert c.partitions["gpu"].max_time_min == 48 * 60 and c.partitions["gpu"].max_nodes == 1


@pytest.mark.parametrize("req, expected", [
    ((2, 8, 32 * 1024), "only 0 node(s) can hold 8 CPUs and 32 GB; partition debug has 2"),
    ((3, 4, 1024), "only 2 node(s) can hold 4 CPUs"),
    ((1, 1, 1024, 0, "gpux"), "partition 'gpux' does not exist"),
    ((2, 1, 1024, 0, "gpu"), "at most 1 per job"),
    ((1, 1, 1024, 8, "gpu"), "8 GPU(s)"),
    ((1, 1, 1024, 0, "gpu", 3 * 24 * 60), "allows at most 2880 min"),
])
def test_requests_that_can_never_start_name_what_was_asked_and_what_exists(req, expected):
    from hpc_seg.launch.capacity import Request, problem

    why = problem(Request(*req), _cluster())
    assert why is not None and expected in why, why


def test_requests_that_fit_pass():
    from hpc_seg.launch.capacity import Request, problem

    c = _cluster()
    assert problem(Request(2, 4, 10 * 1024), c) is None
    assert problem(Request(1, 32, 500 * 1024, gpus_per_node=4, partition="gpu", time_min=60), c) is None


def test_pending_reasons_that_never_clear():
    from hpc_seg.launch.capacity import never_starts

    c = _cluster()
    assert never_starts("PartitionConfig", c) and never_starts("DependencyNeverSatisfied", c)
    assert never_starts("ReqNodeNotAvail, UnavailableNodes:x[1-2]", c)
    assert not never_starts("ReqNodeNotAvail, UnavailableNodes:n1", c)     # down, may come back
    assert not never_starts("Resources", c) and not never_starts("Priority", c)


def test_waiting_for_a_job_that_never_starts_ends_with_one_line(monkeypatch):
    from hpc_seg.launch import ray_submit, status

    stuck = JobInfo("999999", "PENDING", "PENDING", "", "", "", "", "PartitionConfig")
    monkeypatch.setattr(ray_submit.SacctCache, "infos", lambda self, ids: {"999999": stuck})
    monkeypatch.setattr(_capacity(), "read_cluster", _cluster)
    calls = []          # no squeue or scancel on the shared cluster for a made-up job
    monkeypatch.setattr(status.subprocess, "run", lambda cmd, **kw: calls.append(cmd) or
                        subprocess.CompletedProcess(cmd, 0, "", ""))
    with pytest.raises(LaunchError) as err:
        ray_submit.wait_for_end("999999", timeout_s=30)
    msg = str(err.value)
    assert "\n" not in msg and "PENDING (PartitionConfig)" in msg
    assert "partition debug has 2 node(s)" in msg and "cancelled 999999" in msg
    assert ["scancel", "999999"] in calls


# --- on the real local cluster -----------------------------------------------------------------

#: every job these tests queue carries this name: only those are ever cancelled by them (the
#: cluster is shared with other test runs)
NAME = "hpc-seg-capacity-test"
SMALL = dict(executor="slurm", time_min=5, mem_gb=0.25, signal_delay_s=30, job_name=NAME)


def _nodes() -> tuple[str, list[tuple[int, int]]]:
    """(default partition, [(CPUs, memory MB)] of its nodes), read with sinfo (not the code
    under test)."""
    out = subprocess.run(["sinfo", "-h", "-N", "-o", "%P %c %m"], capture_output=True,
                         text=True, check=True).stdout.split("\n")
    rows = [line.split() for line in out if line.strip()]
    part = next(p for p, _c, _m in rows if p.endswith("*"))
    return part.rstrip("*"), [(int(c), int(m)) for p, c, m in rows if p == part]


def _jobs() -> set[str]:
    """Queued jobs of these tests (by :data:`NAME`)."""
    out = subprocess.run(["squeue", "-h", "-n", NAME, "-o", "%i"], capture_output=True,
                         text=True).stdout
    return {j.split("_")[0] for j in out.split()}


@pytest.fixture
def no_new_jobs():
    """This test's queued jobs before it ran; whatever it queued (named :data:`NAME`, never
    anybody else's) is cancelled afterwards: a job that can never start would stay PENDING."""
    before = _jobs()
    yield before
    new = sorted(_jobs() - before)
    if new:
        subprocess.run(["scancel", "-n", NAME, *new], capture_output=True)


@pytest.mark.slurm
@pytest.mark.usefixtures("slurm_cluster")
@pytest.mark.parametrize("kind", ["array", "ddp"])
def test_array_and_ddp_asking_too_much_fail_before_queueing(tmp_path, no_new_jobs, kind):
    part, nodes = _nodes()
    most = max(c for c, _m in nodes)
    before = no_new_jobs
    with pytest.raises(LaunchError) as err:
        if kind == "array":
            submit_array(square_or_fail, [{"x": 1}],
                         LaunchConfig(cpus_per_task=most + 1, **SMALL), tmp_path)
        else:
            n = len(nodes) + 1
            submit_ddp(add, (1, 2), LaunchConfig(nodes=n, **SMALL), tmp_path)
    msg = str(err.value)
    assert "could never start" in msg and f"partition {part} has" in msg and "\n" not in msg
    assert _jobs() == before                              # nothing was queued


@pytest.mark.slurm
@pytest.mark.usefixtures("slurm_cluster")
@pytest.mark.timeout(180)         # without the check, --wait waits for ever
def test_cluster_submit_asking_more_nodes_than_exist_is_one_line(tmp_path, capsys, no_new_jobs):
    n = len(_nodes()[1]) + 1
    before = no_new_jobs
    assert main(["cluster", "submit", "--nodes", str(n), "--wait", "--job-name", NAME,
                 "--log-dir", str(tmp_path / "logs"), "--", "true"]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and "could never start" in err[0] and f"asks {n} node(s)" in err[0]
    assert _jobs() == before


@pytest.mark.slurm
@pytest.mark.usefixtures("slurm_cluster")
def test_cluster_submit_defaults_come_from_the_cluster(tmp_path, capsys):
    _part, nodes = _nodes()
    assert main(["cluster", "submit", "--nodes", "1", "--dry-run", "--log-dir",
                 str(tmp_path), "--", "true"]) == 0
    script = capsys.readouterr().out
    assert f"#SBATCH --cpus-per-task={min(c for c, _m in nodes)}\n" in script
    assert f"#SBATCH --mem={min(m for _c, m in nodes) // 1024}G\n" in script


@pytest.mark.slurm
@pytest.mark.usefixtures("slurm_cluster")
def test_a_job_pending_for_ever_is_cancelled_with_the_reason(tmp_path, no_new_jobs):
    # a job that will never succeed, without waiting for a (possibly busy) node: held, cancelled
    gone = subprocess.run(["sbatch", "--parsable", "--hold", "-J", NAME, "-o", "/dev/null",
                           "--wrap", "true"], capture_output=True, text=True, check=True).stdout.strip()
    subprocess.run(["scancel", "-n", NAME, gone], check=True)
    cfg = LaunchConfig(extra={"dependency": f"afterok:{gone}"}, **SMALL)
    run = submit_array(square_or_fail, [{"x": 2}], cfg, tmp_path)
    t0 = time.monotonic()
    with pytest.raises(LaunchError) as err:
        gather(run, timeout_s=300)
    assert "DependencyNeverSatisfied" in str(err.value) and time.monotonic() - t0 < 120
    job = run.jobs[0].job_id.split("_")[0]
    deadline = time.monotonic() + 30
    while job in _jobs() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert job not in _jobs()                             # cancelled, not left pending
