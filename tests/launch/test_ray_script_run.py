"""The rendered Ray-cluster script run by bash against stand-ins for srun, scontrol, ray and ip.

No SLURM and no Ray: the stand-ins record what the script asked for, so its control flow is
checked on any machine (the real thing runs in tests/launch/multinode on two SLURM nodes):
fail fast when the head or a worker does not come up, the driver's status becomes the job's,
the token is private and never printed, and the trap stops exactly the steps the script started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from hpc_seg.launch.ray_script import RayClusterConfig, render_ray_script

FAKES = {
    "scontrol": 'tr "," "\\n" <<<"$SLURM_JOB_NODELIST"\n',
    "getent": 'echo "10.9.0.2       STREAM $2"\n',
    "ip": '''case "$*" in
  *"route get"*) echo "$5 dev eth0 src 10.9.0.1 uid 0" ;;
  *) echo "2: eth0    inet 10.9.0.1/24 brd 10.9.0.255 scope global eth0" ;;
esac
''',
    # srun: drop its options, note the step (node, pid, options), exec the command
    "srun": '''opts=() node=
while [[ "$1" == -* ]]; do
  case "$1" in -w) node=$2; shift 2 ;; *) opts+=("$1"); shift ;; esac
done
echo "$$ ${node:-all} ${opts[*]} :: $*" >>"$FAKE_DIR/steps"
exec "$@"
''',
    # ray start: join (unless told to fail or to hang), then block like `ray start --block`
    "ray": '''case "$1" in
  status) cat "$FAKE_DIR/joined" 2>/dev/null; exit 0 ;;
  start)
    if [[ " $* " == *" --head "* ]]; then
      [[ -n "${FAKE_HEAD_FAIL:-}" ]] && { echo "head failed" >&2; exit 1; }
      if [[ -n "${FAKE_HEAD_FAIL_ONCE:-}" && ! -e "$FAKE_DIR/head-failed" ]]; then
        touch "$FAKE_DIR/head-failed"; echo "head timed out" >&2; exit 1
      fi
    else
      [[ -n "${FAKE_WORKER_HANG:-}" ]] && exec sleep 300
    fi
    echo " 1 node_$$" >>"$FAKE_DIR/joined"
    echo "RAY_AUTH_MODE=$RAY_AUTH_MODE $*" >>"$FAKE_DIR/ray-starts"
    exec sleep 300 ;;
esac
''',
}


@pytest.fixture()
def job(tmp_path):
    """Runs the script for ``command`` with the stand-ins first on PATH; returns a starter."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in FAKES.items():
        (bin_dir / name).write_text("#!/bin/bash\n" + body)
        (bin_dir / name).chmod(0o755)

    def start(command: str, **env: str) -> tuple[subprocess.Popen, Path]:
        cfg = RayClusterConfig(command=command, nodes=2, cpus_per_node=3, start_timeout_s=4,
                               token_dir=str(tmp_path / "tokens"), tmp_root="/tmp", ray="ray")
        script = tmp_path / "job.sbatch"
        script.write_text(render_ray_script(cfg))
        full = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "HOME": str(tmp_path),
                "FAKE_DIR": str(tmp_path), "SLURM_JOB_ID": "4242", "SLURM_CPUS_PER_TASK": "3",
                "SLURM_JOB_NODELIST": "a,b", "SLURMD_NODENAME": "a", "RAY_AUTH_TOKEN": "leak",
                **env}
        proc = subprocess.Popen(["bash", str(script)], env=full, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)
        return proc, tmp_path
    yield start


def _steps(root: Path) -> list[list[str]]:
    return [line.split() for line in (root / "steps").read_text().splitlines()]


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _finish(proc: subprocess.Popen, timeout: float = 60) -> str:
    try:
        out, _ = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    return out


def test_driver_runs_with_the_cluster_and_its_status_becomes_the_jobs(job):
    proc, root = job('stat -c %a "$RAY_AUTH_TOKEN_PATH" >"$FAKE_DIR/driver"; '
                     'echo "$RAY_ADDRESS ${RAY_AUTH_TOKEN:-unset}" >>"$FAKE_DIR/driver"; exit 7')
    out = _finish(proc)
    assert proc.returncode == 7, out
    mode, line = (root / "driver").read_text().splitlines()
    assert mode == "600"   # the token is private while the job runs...
    address, inherited = line.split()
    assert address == f"10.9.0.1:{20000 + (4242 % 60) * 200}" and inherited == "unset"
    assert not (root / "tokens" / "4242.token").exists()   # ...and gone afterwards
    ray_steps = [s for s in _steps(root) if "ray" in s]
    assert [s[1] for s in ray_steps] == ["a", "b"]   # head on the batch node, a worker on b
    for step in ray_steps:
        assert "--cpus-per-task=3" in step and "--temp-dir=/tmp/r4242-" + step[1] in step
        assert not _alive(int(step[0])), "a Ray step outlived the job"
    starts = (root / "ray-starts").read_text()
    assert starts.count("RAY_AUTH_MODE=token") == 2 and "--num-cpus=3" in starts
    assert "stopping this job's Ray steps" in out and "leak" not in out


def test_a_head_that_fails_fails_the_job_at_once(job):
    t0 = time.monotonic()
    proc, root = job('touch "$FAKE_DIR/driver-ran"', FAKE_HEAD_FAIL="1")
    out = _finish(proc)
    assert proc.returncode == 1 and time.monotonic() - t0 < 10, out
    assert "the Ray step on a exited before it joined (2 attempt(s))" in out
    assert out.count("starting it again") == 1   # start_attempts = 2
    assert not (root / "driver-ran").exists() and not (root / "tokens" / "4242.token").exists()


def test_a_head_that_fails_once_is_started_again(job):
    proc, root = job('touch "$FAKE_DIR/driver-ran"', FAKE_HEAD_FAIL_ONCE="1")
    out = _finish(proc)
    assert proc.returncode == 0, out
    assert "the Ray step on a exited before it joined; starting it again" in out
    assert (root / "driver-ran").exists()
    assert [s[1] for s in _steps(root) if "ray" in s] == ["a", "a", "b"]


def test_a_worker_that_never_joins_fails_the_job_after_the_timeout(job):
    proc, root = job('touch "$FAKE_DIR/driver-ran"', FAKE_WORKER_HANG="1")
    out = _finish(proc)
    assert proc.returncode == 1, out
    assert "only 1 of 2 Ray node(s) joined within 4 s" in out
    assert not (root / "driver-ran").exists()
    assert all(not _alive(int(s[0])) for s in _steps(root) if "ray" in s)


def test_scancel_stops_driver_and_steps_through_the_trap(job):
    proc, root = job('sleep 120 & echo $! >"$FAKE_DIR/driver"; wait')
    deadline = time.monotonic() + 30
    while not (root / "driver").exists() or not (root / "driver").read_text().strip():
        assert time.monotonic() < deadline and proc.poll() is None, "the driver never started"
        time.sleep(0.1)
    t0 = time.monotonic()
    os.kill(proc.pid, signal.SIGTERM)   # what SLURM sends the batch shell on scancel / timeout
    out = _finish(proc, timeout=30)
    assert proc.returncode == 143 and time.monotonic() - t0 < 10, out
    assert all(not _alive(int(s[0])) for s in _steps(root) if "ray" in s)
    assert not _alive(int((root / "driver").read_text())), "the driver's child outlived the job"
    assert not (root / "tokens" / "4242.token").exists()
