"""What a job asks SLURM for: the fields the ``[launch]`` and ``[ray_cluster]`` tables share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from hpc_seg.errors import ConfigError
from hpc_seg.storage.names import is_plain


@dataclass(kw_only=True)
class Resources:
    """Queue, time, nodes, GPUs and memory of one SLURM job (or of each task of an array).

    :class:`~hpc_seg.launch.config.LaunchConfig` (submitit jobs) and
    :class:`~hpc_seg.launch.ray_script.RayClusterConfig` (a Ray cluster per job) extend it; a
    kind whose defaults differ declares only the new default.
    """

    partition: str | None = None
    """SLURM partition (default: the cluster's default partition)"""
    account: str | None = None
    """account the job is charged to (default: yours)"""
    qos: str | None = None
    """quality of service (default: the partition's)"""
    time_min: int = 60
    """wall-time limit of each job (minutes)"""
    nodes: int = 1
    """nodes per job"""
    gpus_per_node: int = 0
    """GPUs per node"""
    mem_gb: float = 4.0
    """memory per node (GB)"""
    job_name: str = "hpc-seg"
    """SLURM job name (one word)"""
    log_dir: str | None = None
    """where the job's logs go"""

    #: job-file keys of earlier versions -> today's field (read with a warning)
    RENAMED_KEYS: ClassVar[dict[str, str]] = {}

    def __post_init__(self) -> None:
        for name in ("time_min", "nodes"):
            _at_least(name, getattr(self, name), 1)
        _at_least("gpus_per_node", self.gpus_per_node, 0)
        if isinstance(self.mem_gb, bool) or not self.mem_gb > 0:
            raise ConfigError(f"mem_gb must be > 0, but got {self.mem_gb}")
        if not is_plain(self.job_name):
            # SLURM puts it into log paths (%x): it must be one plain file name
            raise ConfigError(f"job_name must be a plain name (letters, digits, '.', '_', '-'; "
                              f"not starting with '.' or '-'), but got '{self.job_name}'")

    @property
    def mem_text(self) -> str:
        """The memory as sbatch writes it (``32G``, ``1.5G``)."""
        return f"{self.mem_gb:g}G"


def _at_least(name: str, value: object, low: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ConfigError(f"{name} must be an integer >= {low}, but got {value}")


at_least = _at_least
