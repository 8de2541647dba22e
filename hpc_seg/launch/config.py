"""The ``[launch]`` table of a job: where and with what resources a stage's jobs run."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from hpc_seg.errors import ConfigError
from hpc_seg.launch.resources import Resources, at_least

_SBATCH_KEY = re.compile(r"^[a-z][a-z0-9_-]*$")


@dataclass(kw_only=True)
class LaunchConfig(Resources):
    """Executor choice and the resources of one job (or of each task of an array).

    Loaded from a TOML ``[launch]`` table with ``hpc_seg.config.from_dict(LaunchConfig, table)``.
    """

    executor: Literal["auto", "slurm", "local"] = "auto"
    """``auto``: SLURM when a cluster answers, the local executor otherwise."""
    tasks_per_node: int = 1
    """ranks per node of a multi-task (DDP) job: one per GPU"""
    cpus_per_task: int = 1
    """CPUs of each task"""
    array_parallelism: int = 16
    """At most this many array tasks run at once (the ``%N`` of ``--array``)."""
    max_requeue: int = 3
    """How often a pre-empted or timed-out checkpointable job may requeue itself."""
    signal_delay_s: int = 90
    """USR2 arrives this many seconds before the time limit: the job checkpoints and requeues."""
    log_dir: str | None = None
    """submitit logs and pickles; default ``<run dir>/submitit``. Must be on a shared file system."""
    extra: dict[str, str] = field(default_factory=dict)
    """Further ``#SBATCH`` options, e.g. ``{constraint = "a100", mail-type = "FAIL"}``."""

    RENAMED_KEYS: ClassVar[dict[str, str]] = {"folder": "log_dir"}

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("tasks_per_node", "cpus_per_task", "array_parallelism"):
            at_least(name, getattr(self, name), 1)
        for name in ("max_requeue", "signal_delay_s"):
            at_least(name, getattr(self, name), 0)
        if self.signal_delay_s >= self.time_min * 60:
            raise ConfigError(f"signal_delay_s ({self.signal_delay_s}) must be shorter than "
                              f"the time limit ({self.time_min} min)")
        if self.executor == "local" and self.nodes != 1:
            raise ConfigError(f"executor local runs on this machine only, but got "
                              f"nodes {self.nodes}")
        for key in self.extra:
            if not _SBATCH_KEY.match(key):
                raise ConfigError(f"extra: {key} is not an sbatch option name "
                                  "(lower-case letters, digits, '-' or '_')")

    @property
    def world_size(self) -> int:
        """Ranks of a multi-task job: nodes x tasks_per_node."""
        return self.nodes * self.tasks_per_node
