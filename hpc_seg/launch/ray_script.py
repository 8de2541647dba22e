"""Render the Ray-on-SLURM sbatch script (``cluster/ray-cluster.sbatch.in``) from a typed config.

``hpc-seg`` stages that run on Ray (ingest, tuning) can then use a multi-node allocation:
``hpc-seg cluster submit -- COMMAND`` renders the script and submits it; the driver command finds
the cluster through ``RAY_ADDRESS``. The rendered text is golden-tested
(``tests/launch/golden/ray-cluster*.sbatch``); the script's behaviour (token, ports, teardown) is
tested on the two-node local SLURM (``tests/multinode``).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

from hpc_seg.errors import ConfigError
from hpc_seg.launch.resources import Resources, at_least

TEMPLATE = Path(__file__).resolve().parents[2] / "cluster" / "ray-cluster.sbatch.in"

#: Ray's socket paths (``<temp dir>/session_<date>_<pid>/sockets/plasma_store``) must fit in 107
#: bytes; the session part takes ~65, the per-job suffix ``/r<job id>-<node>`` ~30.
MAX_TMP_ROOT_CHARS = 12


@dataclass(kw_only=True)
class RayClusterConfig(Resources):
    """One allocation of ``nodes`` nodes, one Ray node per SLURM node (the ``[ray_cluster]`` table)."""

    command: str
    """Driver command run on the head node once all nodes joined, e.g. ``hpc-seg ingest ...``."""
    # a Ray cluster's own defaults for the shared resource fields
    job_name: str = "hpc-seg-ray"
    nodes: int = 2
    mem_gb: float = 32.0
    """memory per node (GB; `hpc-seg cluster submit` without it: the memory of the partition's
    smallest node, read from the cluster)"""
    time_min: int = 120
    log_dir: str = "logs"
    """the job's log and its rendered script go here"""
    cpus_per_node: int = 8
    """CPUs per node (Ray's worker slots; `hpc-seg cluster submit` without it: the CPUs of the
    partition's smallest node, read from the cluster)"""
    exclusive: bool = True
    """Whole nodes: Ray does not confine itself to the CPUs SLURM gave it."""
    ray: str = "ray"
    """The ``ray`` executable (e.g. ``.venv/bin/ray``)."""
    setup: list[str] = field(default_factory=list)
    """Shell lines before Ray starts (``module load ...``, ``source .venv/bin/activate``)."""
    start_timeout_s: int = 120
    """The job fails when the head or any worker has not joined by then."""
    start_attempts: int = 2
    """Tries per node of ``ray start`` (which gives up when its raylet registers too slowly)."""
    dashboard: bool = True
    """Start the dashboard (always bound to 127.0.0.1 on the head node; reach it by SSH tunnel)."""
    object_store_gb: float | None = None
    """Object store per node; Ray's default is 30% of the node's memory."""
    port_base: int = 20000
    """first port of the ports the jobs share out"""
    port_block: int = 200
    """Ports per job: 10 fixed ones, the rest for worker processes."""
    port_slots: int = 60
    """Jobs get port block ``job_id % port_slots``: below Linux's ephemeral range by default."""
    token_dir: str = "~/.hpc-seg/ray-tokens"
    """Where the per-job token file (mode 600) lives; must be readable on every node (shared)."""
    tmp_root: str = "/tmp"
    """Node-local parent of the per-job Ray temp dirs; short, for Ray's socket path limit."""
    drain_timeout_s: int = 1
    """``RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S`` (Ray's default 30 s outlasts SLURM's KillWait)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("cpus_per_node", "start_timeout_s", "port_slots", "start_attempts"):
            at_least(name, getattr(self, name), 1)
        at_least("drain_timeout_s", self.drain_timeout_s, 0)
        if self.port_block < 20 + self.cpus_per_node:
            raise ConfigError(f"port_block ({self.port_block}) leaves too few worker ports for "
                              f"{self.cpus_per_node} CPUs (need >= {20 + self.cpus_per_node})")
        top = self.port_base + self.port_slots * self.port_block
        if self.port_base < 1024 or top > 65536:
            raise ConfigError(f"ports {self.port_base}..{top - 1} (port_base + port_slots x "
                              "port_block) must lie in 1024..65535")
        if self.object_store_gb is not None and not self.object_store_gb > 0:
            raise ConfigError(f"object_store_gb must be > 0, but got {self.object_store_gb}")
        if len(self.tmp_root) > MAX_TMP_ROOT_CHARS or not self.tmp_root.startswith("/"):
            raise ConfigError(f"tmp_root {self.tmp_root} must be an absolute path of at most "
                              f"{MAX_TMP_ROOT_CHARS} characters (Ray's Unix sockets live under it "
                              "and their paths are limited to 107 bytes)")
        if not self.command.strip():
            raise ConfigError("command must not be empty")


def _shell_path(path: str) -> str:
    """``path`` quoted for the shell, with a leading ``~/`` kept as ``$HOME`` (expanded on the node)."""
    if path == "~" or path.startswith("~/"):
        return '"$HOME"' + (shlex.quote(path[1:]) if len(path) > 1 else "")
    return shlex.quote(path)


def _sbatch_lines(cfg: RayClusterConfig) -> list[str]:
    opts: dict[str, str | int] = {
        "job-name": cfg.job_name, "nodes": cfg.nodes, "ntasks-per-node": 1,
        "cpus-per-task": cfg.cpus_per_node, "mem": cfg.mem_text, "time": cfg.time_min,
        "output": f"{cfg.log_dir}/%x-%j.out",
    }
    if cfg.exclusive:
        opts["exclusive"] = ""
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
    start_opts = ""
    if cfg.object_store_gb:
        start_opts += f" --object-store-memory={int(cfg.object_store_gb * 1024**3)}"
    head_opts = "" if cfg.dashboard else " --include-dashboard=false"
    values = {
        "SBATCH_LINES": "\n".join(_sbatch_lines(cfg)),
        "SETUP_LINES": "\n".join(cfg.setup) if cfg.setup else "# (no setup lines)",
        "GPUS": str(cfg.gpus_per_node),
        "STEP_GPU_OPTS": f" --gpus-per-task={cfg.gpus_per_node}" if cfg.gpus_per_node else "",
        "START_OPTS": start_opts, "HEAD_OPTS": head_opts,
        "PORT_BASE": str(cfg.port_base), "PORT_BLOCK": str(cfg.port_block),
        "PORT_SLOTS": str(cfg.port_slots),
        "TOKEN_DIR": _shell_path(cfg.token_dir), "TMP_ROOT": _shell_path(cfg.tmp_root),
        "DRAIN_S": str(cfg.drain_timeout_s),
        "RAY": shlex.quote(cfg.ray), "START_TIMEOUT_S": str(cfg.start_timeout_s),
        "START_ATTEMPTS": str(cfg.start_attempts),
        "COMMAND": cfg.command,
    }
    for key, value in values.items():
        text = text.replace(f"@{key}@", value)
    return text
