"""Choosing and building the submitit executor for a :class:`LaunchConfig`.

``auto`` means SLURM when a cluster answers (``srun`` on PATH and ``scontrol ping`` says UP), the
local executor otherwise; one log line says which and why. Asking for ``slurm`` where there is no
cluster fails with a :class:`LaunchError` instead of silently running locally (submitit's
AutoExecutor would, when it finds no sbatch).
"""

from __future__ import annotations

import functools
import logging
import shutil
import subprocess
from pathlib import Path
from typing import Any

from hpc_seg.errors import LaunchError
from hpc_seg.launch.capacity import Request, check_request
from hpc_seg.launch.config import LaunchConfig

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=1)
def detect_slurm() -> tuple[bool, str]:
    """Whether a SLURM controller answers here, and the reason (cached per process)."""
    if shutil.which("srun") is None or shutil.which("scontrol") is None:
        return False, "srun/scontrol not on PATH"
    try:
        out = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"scontrol ping failed ({exc})"
    if "UP" not in out.stdout:
        return False, f"scontrol ping: {(out.stdout + out.stderr).strip() or 'no answer'}"
    return True, "srun on PATH and the controller answers scontrol ping"


def resolve_executor(cfg: LaunchConfig) -> str:
    """``"slurm"`` or ``"local"``; logs the choice and the reason once."""
    ok, why = detect_slurm()
    if cfg.executor == "slurm":
        if not ok:
            raise LaunchError(f"[launch] executor = 'slurm', but there is no SLURM here: {why}. "
                              "Start one with `hpc-seg slurm up` or use executor = 'local'")
        log.info("executor: slurm (requested; %s)", why)
        return "slurm"
    if cfg.executor == "local":
        log.info("executor: local (requested)")
        return "local"
    log.info("executor: %s (auto: %s)", "slurm" if ok else "local", why)
    return "slurm" if ok else "local"


def slurm_parameters(cfg: LaunchConfig) -> dict[str, Any]:
    """submitit ``update_parameters`` keywords for ``cfg`` on SLURM."""
    params: dict[str, Any] = {
        "slurm_job_name": cfg.job_name, "slurm_time": cfg.time_min, "slurm_nodes": cfg.nodes,
        "slurm_ntasks_per_node": cfg.tasks_per_node, "slurm_cpus_per_task": cfg.cpus_per_task,
        "slurm_mem": (f"{int(cfg.mem_gb)}GB" if cfg.mem_gb == int(cfg.mem_gb)
                      else f"{int(cfg.mem_gb * 1024)}MB"),
        "slurm_array_parallelism": cfg.array_parallelism,
        "slurm_signal_delay_s": cfg.signal_delay_s,
    }
    if cfg.gpus_per_node:
        params["slurm_gpus_per_node"] = cfg.gpus_per_node
    for name in ("partition", "account", "qos"):
        if getattr(cfg, name):
            params[f"slurm_{name}"] = getattr(cfg, name)
    if cfg.extra:
        params["slurm_additional_parameters"] = dict(cfg.extra)
    return params


def make_executor(cfg: LaunchConfig, folder: str | Path) -> Any:
    """A submitit executor for ``cfg`` writing logs and pickles under ``cfg.log_dir or folder``."""
    import submitit

    kind = resolve_executor(cfg)
    folder = Path(cfg.log_dir) if cfg.log_dir else Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if kind == "slurm":
        # refused here, before anything is queued, when no node could ever run it
        check_request(Request(nodes=cfg.nodes, cpus_per_node=cfg.tasks_per_node * cfg.cpus_per_task,
                              mem_mb_per_node=int(cfg.mem_gb * 1024),
                              gpus_per_node=cfg.gpus_per_node, partition=cfg.partition,
                              time_min=cfg.time_min, what=f"SLURM job {cfg.job_name!r}"))
        ex = submitit.AutoExecutor(folder=folder, cluster="slurm", slurm_max_num_timeout=cfg.max_requeue)
        ex.update_parameters(**slurm_parameters(cfg))
    else:
        ex = submitit.AutoExecutor(folder=folder, cluster="local")
        ex.update_parameters(timeout_min=cfg.time_min, tasks_per_node=cfg.tasks_per_node,
                             gpus_per_node=cfg.gpus_per_node, cpus_per_task=cfg.cpus_per_task,
                             name=cfg.job_name)
    return ex


def sbatch_text(cfg: LaunchConfig, folder: str | Path, *, array_size: int | None = None) -> str:
    """The sbatch script submitit would submit for ``cfg`` (golden-tested; no cluster needed)."""
    import shlex

    from hpc_seg.launch.submitit_compat import SUBMIT_MODULE, sbatch_string

    params = {k.removeprefix("slurm_"): v for k, v in slurm_parameters(cfg).items()}
    if array_size is not None:
        params["map_count"] = array_size
    command = " ".join(["python", f"-u -m {SUBMIT_MODULE}", shlex.quote(str(folder))])
    return sbatch_string(command, folder, **params)
