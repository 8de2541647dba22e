"""Render the Ray-on-SLURM sbatch script (``cluster/ray-cluster.sbatch.in``) from a typed config.

``hpc-seg`` stages that run on Ray (ingest, tuning) can then use a multi-node allocation: submit
the rendered script with ``sbatch``; its driver command finds the cluster through ``RAY_ADDRESS``.
The rendered text is golden-tested (``tests/launch/golden/ray-cluster.sbatch``).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

from hpc_seg.errors import ConfigError

TEMPLATE = Path(__file__).resolve().parents[2] / "cluster" / "ray-cluster.sbatch.in"


@dataclass(kw_only=True)
class RayClusterConfig:
    """One allocation of ``nodes`` nodes, one Ray node per SLURM node."""

    command: str
    """Driver command run on the head node once all nodes joined, e.g. ``hpc-seg ingest ...``."""
    job_name: str = "hpc-seg-ray"
    nodes: int = 2
    cpus_per_node: int = 8
    gpus_per_node: int = 0
    mem_gb: int = 32
    time_min: int = 120
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    log_dir: str = "logs"
    head_port: int = 6379
    dashboard_host: str = "127.0.0.1"
    """Bind the dashboard to localhost; use an SSH tunnel rather than opening it to the network."""
    dashboard_port: int = 8265
    ray: str = "ray"
    """The ``ray`` executable (e.g. ``.venv/bin/ray``)."""
    setup: list[str] = field(default_factory=list)
    """Shell lines before Ray starts (``module load ...``, ``source .venv/bin/activate``)."""
    start_timeout_s: int = 120

    def __post_init__(self) -> None:
        for name in ("nodes", "cpus_per_node", "mem_gb", "time_min", "start_timeout_s"):
            if getattr(self, name) < 1:
                raise ConfigError(f"[ray_cluster] {name} must be >= 1, but got {getattr(self, name)}")
        if self.gpus_per_node < 0:
            raise ConfigError(f"[ray_cluster] gpus_per_node must be >= 0, but got {self.gpus_per_node}")
        for name in ("head_port", "dashboard_port"):
            if not 1024 <= getattr(self, name) <= 65535:
                raise ConfigError(f"[ray_cluster] {name} must be a port in 1024..65535")
        if not self.command.strip():
            raise ConfigError("[ray_cluster] command must not be empty")


def _sbatch_lines(cfg: RayClusterConfig) -> list[str]:
    opts: dict[str, str | int] = {
        "job-name": cfg.job_name, "nodes": cfg.nodes, "ntasks-per-node": 1,
        "cpus-per-task": cfg.cpus_per_node, "mem": f"{cfg.mem_gb}G", "time": cfg.time_min,
        "output": f"{cfg.log_dir}/%x-%j.out", "exclusive": "",
    }
    if cfg.gpus_per_node:
        opts["gpus-per-node"] = cfg.gpus_per_node
    for name in ("partition", "account", "qos"):
        if getattr(cfg, name):
            opts[name] = getattr(cfg, name)
    return [f"#SBATCH --{k}" if v == "" else f"#SBATCH --{k}={shlex.quote(str(v))}"
            for k, v in opts.items()]


def render_ray_script(cfg: RayClusterConfig, template: Path = TEMPLATE) -> str:
    """The sbatch text for ``cfg``."""
    text = template.read_text()
    values = {
        "SBATCH_LINES": "\n".join(_sbatch_lines(cfg)),
        "SETUP_LINES": "\n".join(cfg.setup) if cfg.setup else "# (no setup lines)",
        "HEAD_PORT": str(cfg.head_port), "DASHBOARD_HOST": cfg.dashboard_host,
        "DASHBOARD_PORT": str(cfg.dashboard_port), "GPUS": str(cfg.gpus_per_node),
        "RAY": shlex.quote(cfg.ray), "START_TIMEOUT_S": str(cfg.start_timeout_s),
        "COMMAND": cfg.command,
    }
    for key, value in values.items():
        text = text.replace(f"@{key}@", value)
    return text
