"""The ``[launch]`` table of a job: where and with what resources a stage's jobs run."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from hpc_seg.errors import ConfigError

_SBATCH_KEY = re.compile(r"^[a-z][a-z0-9_-]*$")


@dataclass(kw_only=True)
class LaunchConfig:
    """Executor choice and the resources of one job (or of each task of an array).

    Loaded from a TOML ``[launch]`` table with ``hpc_seg.config.from_dict(LaunchConfig, table)``.
    """

    executor: Literal["auto", "slurm", "local"] = "auto"
    """``auto``: SLURM when a cluster answers, the local executor otherwise."""
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    time_min: int = 60
    """Wall-time limit of each job (minutes)."""
    nodes: int = 1
    tasks_per_node: int = 1
    cpus_per_task: int = 1
    gpus_per_node: int = 0
    mem_gb: float = 4.0
    """Memory per node (GB)."""
    array_parallelism: int = 16
    """At most this many array tasks run at once (the ``%N`` of ``--array``)."""
    max_requeue: int = 3
    """How often a pre-empted or timed-out checkpointable job may requeue itself."""
    signal_delay_s: int = 90
    """USR2 arrives this many seconds before the time limit: the job checkpoints and requeues."""
    folder: str | None = None
    """submitit logs and pickles; default ``<run dir>/submitit``. Must be on a shared file system."""
    job_name: str = "hpc-seg"
    extra: dict[str, str] = field(default_factory=dict)
    """Further ``#SBATCH`` options, e.g. ``{constraint = "a100", mail-type = "FAIL"}``."""

    def __post_init__(self) -> None:
        for name in ("time_min", "nodes", "tasks_per_node", "cpus_per_task", "array_parallelism"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be an integer >= 1, but got {value!r}")
        for name in ("gpus_per_node", "max_requeue", "signal_delay_s"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ConfigError(f"{name} must be an integer >= 0, but got {value!r}")
        if not self.mem_gb > 0:
            raise ConfigError(f"mem_gb must be > 0, but got {self.mem_gb!r}")
        if self.signal_delay_s >= self.time_min * 60:
            raise ConfigError(f"signal_delay_s={self.signal_delay_s} must be shorter than "
                              f"the time limit ({self.time_min} min)")
        if self.executor == "local" and self.nodes != 1:
            raise ConfigError(f"executor 'local' runs on this machine only, but got "
                              f"nodes={self.nodes}")
        for key in self.extra:
            if not _SBATCH_KEY.match(key):
                raise ConfigError(f"extra: {key!r} is not an sbatch option name "
                                  "(lower-case letters, digits, '-' or '_')")
        if not self.job_name or any(c.isspace() for c in self.job_name):
            raise ConfigError(f"job_name must be a non-empty word, but got {self.job_name!r}")

    @property
    def world_size(self) -> int:
        """Ranks of a multi-task job: nodes x tasks_per_node."""
        return self.nodes * self.tasks_per_node
