"""Where HAD-Net training runs: here, as local gloo processes, or as a submitit DDP job on SLURM.

The job's ``[launch]`` table is the shared :class:`hpc_seg.launch.LaunchConfig`:

- ``executor = "local"``: in this process, or ``tasks_per_node`` local gloo processes;
- ``executor = "slurm"`` (or ``"auto"`` on a cluster): one submitit job of
  ``nodes x tasks_per_node`` ranks through :func:`hpc_seg.launch.submit_ddp`, which wraps the call
  in ``Resumable``: pre-emption or time-out requeues the same call, and the training functions
  always resume from ``out_dir/checkpoints``.

``out_dir/job.json`` records executor, ranks, the job id and the run's inputs (for
distillation the SHA-256 of the teacher and student model files); on SLURM the same inputs are
part of the ``config_hash`` in the launcher's lineage table.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hpc_seg.storage.shards import atomic_write_bytes

log = logging.getLogger(__name__)


def _uses_slurm(launch: Any) -> bool:
    if launch is None or launch.executor == "local":
        return False
    from hpc_seg.launch.executor import resolve_executor

    return resolve_executor(launch) == "slurm"  # LaunchError if "slurm" and no cluster answers


def _launched_rank() -> bool:
    return "RANK" in os.environ and int(os.environ.get("WORLD_SIZE", "1")) > 1


def run_ranks(fn: Callable[..., Any], args: tuple, launch: Any | None, out_dir: Path,
              *, name: str, config_hash: str | None = None,
              lineage: dict[str, Any] | None = None) -> Any:
    """Run ``fn(*args)`` on every rank ``launch`` asks for (``None``: here); rank 0's result."""
    out_dir = Path(out_dir)
    nodes, tasks = (launch.nodes, launch.tasks_per_node) if launch is not None else (1, 1)
    world = nodes * tasks
    t0 = time.perf_counter()
    info: dict[str, Any] = {}
    if _launched_rank():
        # Already one rank of a job started by hand (sbatch + srun, torchrun): run here, never
        # submit again; init_distributed() inside fn joins the other ranks.
        result = fn(*args)
    elif _uses_slurm(launch):
        from hpc_seg.launch.submit import submit_ddp, wait_job

        # submit_ddp keeps submitit's files under out_dir/submitit and the lineage table in
        # out_dir/lineage.sqlite (one row per job, with config_hash).
        job = submit_ddp(fn, args, launch, out_dir, name=name, config_hash=config_hash,
                         inputs=lineage)
        result = wait_job(job, run_dir=out_dir)[0]
        info = {"job_id": str(job.job_id), "lineage": str(out_dir / "lineage.sqlite")}
    elif world > 1:
        from hpc_seg.launch.spawn import spawn_ranks

        if nodes != 1:
            from hpc_seg.errors import ConfigError

            raise ConfigError(f"[launch] executor 'local' runs on one node, but nodes = {nodes}")
        result = spawn_ranks(world, fn, *args)[0]
    else:
        result = fn(*args)
    record = {"name": name, "executor": "slurm" if info else "local", "nodes": nodes,
              "tasks_per_node": tasks, **info, "config_hash": config_hash,
              "inputs": lineage or {}, "result": str(result),
              "seconds": time.perf_counter() - t0}
    atomic_write_bytes(json.dumps(record, indent=2).encode(), out_dir / "job.json")
    return result
