"""Submit the Ray-cluster sbatch script (:mod:`hpc_seg.launch.ray_script`) and wait for its end.

The rendered script is kept next to the job log (``<log_dir>/<job name>-<job id>.sbatch``), so
that what ran can be read back; the log itself is ``<log_dir>/<job name>-<job id>.out``.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from hpc_seg.errors import LaunchError
from hpc_seg.launch.ray_script import RayClusterConfig, render_ray_script
from hpc_seg.launch.capacity import Request, check_request
from hpc_seg.launch.status import JobInfo, SacctCache, fail_if_never_starts


@dataclass(frozen=True)
class SubmittedCluster:
    """A submitted Ray-cluster job."""

    job_id: str
    script: Path
    log: Path


def submit_ray_cluster(cfg: RayClusterConfig) -> SubmittedCluster:
    """Render ``cfg`` into ``cfg.log_dir`` and ``sbatch`` it from the current directory; a job
    that could never start on this cluster is refused first (:func:`check_request`)."""
    check_request(Request(nodes=cfg.nodes, cpus_per_node=cfg.cpus_per_node,
                          mem_mb_per_node=cfg.mem_gb * 1024, gpus_per_node=cfg.gpus_per_node,
                          partition=cfg.partition, time_min=cfg.time_min,
                          what=f"Ray cluster job {cfg.job_name!r}"))
    log_dir = Path(cfg.log_dir).absolute()
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f"{cfg.job_name}-", suffix=".sbatch", dir=log_dir)
        with os.fdopen(fd, "w") as fh:
            fh.write(render_ray_script(cfg))
    except OSError as exc:
        raise LaunchError(f"{log_dir}: cannot write the Ray-cluster script: "
                          f"{exc.strerror or exc}") from None
    try:
        proc = subprocess.run(["sbatch", "--parsable", tmp], capture_output=True, text=True,
                              timeout=60)
    except FileNotFoundError:
        Path(tmp).unlink(missing_ok=True)
        raise LaunchError("sbatch not found: no SLURM on this machine "
                          "(slurm/local-cluster up starts a local one)") from None
    if proc.returncode != 0:
        Path(tmp).unlink(missing_ok=True)
        why = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        raise LaunchError(f"sbatch {tmp} failed: {why}")
    job_id = proc.stdout.strip().split(";")[0]
    script = log_dir / f"{cfg.job_name}-{job_id}.sbatch"
    os.replace(tmp, script)
    return SubmittedCluster(job_id=job_id, script=script, log=log_dir / f"{cfg.job_name}-{job_id}.out")


def wait_for_end(job_id: str, timeout_s: float | None = None) -> JobInfo:
    """Block until sacct reports the job in a terminal state; returns that record. A job that
    SLURM keeps PENDING for a reason that never clears is cancelled: :class:`LaunchError`."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    sacct = SacctCache(min_interval_s=1.0, max_interval_s=5.0)   # a job of minutes: 5 s at most late
    while True:
        info = sacct.infos([job_id]).get(job_id)
        if info is not None and info.terminal:
            return info
        if info is None or not info.terminal:
            fail_if_never_starts([job_id], {job_id: info} if info is not None else {})
        if deadline is not None and time.monotonic() > deadline:
            state = info.raw_state if info else "not in sacct yet"
            raise LaunchError(f"job {job_id} still {state} after {timeout_s:.0f} s")
        time.sleep(0.5)
