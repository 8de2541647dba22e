"""What the SLURM cluster has, and whether a job could ever start on it.

A job that asks more than any node (or partition) has is accepted by ``sbatch`` on some
configurations and then waits for ever, PENDING with a reason such as ``PartitionConfig``; on
others ``sbatch`` refuses it with "Requested node configuration is not available", which names
neither. So every submission is checked first (:func:`check_request`): the nodes of the
partition are read with ``scontrol show node``/``partition``, and a request
that no set of nodes can satisfy fails before it is queued, naming what was asked and what
exists. Waiting jobs are watched too: a PENDING reason that can never clear
(:data:`NEVER_CLEARS`) ends the wait with the same kind of message, and the job is cancelled.

Cluster-dependent defaults come from here as well (:func:`default_cpus_per_node`).
"""

from __future__ import annotations

import logging
import re
import subprocess
from dataclasses import dataclass, field

from hpc_seg.errors import LaunchError

log = logging.getLogger(__name__)

#: PENDING reasons that no amount of waiting clears: the request does not fit the partition,
#: or names an account/QOS/constraint/dependency that cannot be met
NEVER_CLEARS = frozenset({"PartitionConfig", "PartitionNodeLimit", "PartitionTimeLimit",
                          "BadConstraints", "InvalidAccount", "InvalidQOS", "AccountNotAllowed",
                          "QOSNotAllowed", "DependencyNeverSatisfied"})


@dataclass(frozen=True)
class Node:
    """One node as ``scontrol show node`` reports it."""

    name: str
    cpus: int
    mem_mb: int
    gpus: int
    partitions: tuple[str, ...]
    state: str = ""


@dataclass(frozen=True)
class Partition:
    """One partition as ``scontrol show partition`` reports it (None: unlimited)."""

    name: str
    nodes: tuple[str, ...]
    max_nodes: int | None = None
    max_time_min: int | None = None
    default: bool = False
    state: str = "UP"


@dataclass
class Cluster:
    """The nodes and partitions of a cluster."""

    nodes: dict[str, Node] = field(default_factory=dict)
    partitions: dict[str, Partition] = field(default_factory=dict)

    @property
    def default_partition(self) -> Partition | None:
        return next((p for p in self.partitions.values() if p.default), None)

    def partition_nodes(self, partition: Partition) -> list[Node]:
        return [self.nodes[n] for n in partition.nodes if n in self.nodes]


@dataclass(frozen=True)
class Request:
    """What one job (or one task of an array) asks per node."""

    nodes: int
    cpus_per_node: int
    mem_mb_per_node: int
    gpus_per_node: int = 0
    partition: str | None = None
    time_min: int | None = None
    what: str = "job"

    def text(self) -> str:
        gpus = f", {self.gpus_per_node} GPU(s)" if self.gpus_per_node else ""
        return (f"{self.nodes} node(s) x {self.cpus_per_node} CPUs, "
                f"{_gb(self.mem_mb_per_node)}{gpus}"
                + (f", {self.time_min} min" if self.time_min else ""))


def _gb(mb: int) -> str:
    return f"{mb / 1024:.1f}".removesuffix(".0") + " GB"


def _fields(line: str) -> dict[str, str]:
    """``Key=Value Key=Value ...`` of one ``scontrol -o`` line (values may not hold spaces,
    except OS=..., which is read up to the next key)."""
    out: dict[str, str] = {}
    for m in re.finditer(r"(\w+)=(.*?)(?=\s+\w+=|$)", line):
        out[m.group(1)] = m.group(2).strip()
    return out


def _int(text: str | None, default: int = 0) -> int:
    try:
        return int(text or default)
    except ValueError:
        return default


def _gpus(gres: str) -> int:
    """GPUs of a ``Gres=gpu:a100:4(S:0-1),shard:8`` value."""
    total = 0
    for item in (gres or "").split(","):
        parts = re.sub(r"\(.*?\)", "", item).split(":")
        if parts[0] == "gpu" and parts[-1].isdigit():
            total += int(parts[-1])
    return total


def _minutes(text: str | None) -> int | None:
    """SLURM's ``[days-]hours:minutes:seconds`` (or UNLIMITED) in minutes."""
    if not text or text.upper() in ("UNLIMITED", "INFINITE", "NONE"):
        return None
    days, _, rest = text.rpartition("-")
    parts = [int(p) for p in rest.split(":")]
    while len(parts) < 3:
        parts.insert(0, 0)
    h, m, s = parts[-3:]
    return (_int(days) * 24 + h) * 60 + m + (1 if s else 0)


def expand_hostlist(text: str) -> list[str]:
    """``n[1-3,5],gpu01`` → ``['n1', 'n2', 'n3', 'n5', 'gpu01']``."""
    names: list[str] = []
    for m in re.finditer(r"([^,\[]+)(?:\[([^\]]+)\])?", text or ""):
        prefix, ranges = m.group(1), m.group(2)
        if not ranges:
            names.append(prefix)
            continue
        for r in ranges.split(","):
            lo, _, hi = r.partition("-")
            width = len(lo)
            for i in range(int(lo), int(hi or lo) + 1):
                names.append(f"{prefix}{i:0{width}d}")
    return [n for n in names if n and n != "(null)"]


def parse_nodes(text: str) -> dict[str, Node]:
    """``scontrol -o show node`` output → nodes by name."""
    nodes = {}
    for line in text.splitlines():
        f = _fields(line)
        if "NodeName" not in f:
            continue
        cpus = _int(f.get("CPUEfctv") or f.get("CPUTot"))
        nodes[f["NodeName"]] = Node(f["NodeName"], cpus, _int(f.get("RealMemory")),
                                    _gpus(f.get("Gres", "")),
                                    tuple(p for p in f.get("Partitions", "").split(",") if p),
                                    f.get("State", ""))
    return nodes


def parse_partitions(text: str) -> dict[str, Partition]:
    """``scontrol -o show partition`` output → partitions by name."""
    parts = {}
    for line in text.splitlines():
        f = _fields(line)
        if "PartitionName" not in f:
            continue
        max_nodes = f.get("MaxNodes", "UNLIMITED")
        parts[f["PartitionName"]] = Partition(
            f["PartitionName"], tuple(expand_hostlist(f.get("Nodes", ""))),
            None if max_nodes.upper() == "UNLIMITED" else _int(max_nodes),
            _minutes(f.get("MaxTime")), f.get("Default", "NO").upper() == "YES",
            f.get("State", "UP"))
    return parts


def read_cluster() -> Cluster | None:
    """The cluster's nodes and partitions; None without ``scontrol``. Not cached: a cluster's
    nodes change (the local one switches between one and two nodes), and it is read once per
    submission, in tens of milliseconds."""
    try:
        nodes = subprocess.run(["scontrol", "-o", "show", "node"], capture_output=True,
                               text=True, timeout=30)
        parts = subprocess.run(["scontrol", "-o", "show", "partition"], capture_output=True,
                               text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    if nodes.returncode != 0 or parts.returncode != 0:
        return None
    cluster = Cluster(parse_nodes(nodes.stdout), parse_partitions(parts.stdout))
    return cluster if cluster.nodes and cluster.partitions else None


def describe(cluster: Cluster, partition: Partition) -> str:
    """``partition debug has 1 node: vm 4 CPUs 20 GB`` (at most 4 kinds of node listed)."""
    nodes = cluster.partition_nodes(partition)
    kinds: dict[tuple[int, int, int], list[str]] = {}
    for n in nodes:
        kinds.setdefault((n.cpus, n.mem_mb, n.gpus), []).append(n.name)
    shown = []
    for (cpus, mem, gpus), names in list(kinds.items())[:4]:
        who = names[0] if len(names) == 1 else f"{len(names)} x"
        shown.append(f"{who} {cpus} CPUs {_gb(mem)}" + (f" {gpus} GPUs" if gpus else ""))
    limit = f", at most {partition.max_nodes} per job" if partition.max_nodes else ""
    return (f"partition {partition.name} has {len(nodes)} node(s){limit}: " + "; ".join(shown))


def problem(req: Request, cluster: Cluster) -> str | None:
    """Why ``req`` can never start on ``cluster`` (None: some nodes could run it)."""
    if req.partition:
        partition = cluster.partitions.get(req.partition)
        if partition is None:
            return (f"partition {req.partition!r} does not exist; partitions are "
                    f"{sorted(cluster.partitions)}")
    else:
        partition = cluster.default_partition
        if partition is None:
            return None       # SLURM picks; nothing to check against
    fits = [n for n in cluster.partition_nodes(partition)
            if n.cpus >= req.cpus_per_node and n.mem_mb >= req.mem_mb_per_node
            and n.gpus >= req.gpus_per_node]
    if len(fits) < req.nodes:
        return (f"it asks {req.text()}, but only {len(fits)} node(s) can hold "
                f"{req.cpus_per_node} CPUs and {_gb(req.mem_mb_per_node)}"
                + (f" and {req.gpus_per_node} GPU(s)" if req.gpus_per_node else "")
                + f"; {describe(cluster, partition)}")
    if partition.max_nodes is not None and req.nodes > partition.max_nodes:
        return f"it asks {req.nodes} node(s); {describe(cluster, partition)}"
    if req.time_min and partition.max_time_min is not None and req.time_min > partition.max_time_min:
        return (f"it asks {req.time_min} min; partition {partition.name} allows at most "
                f"{partition.max_time_min} min")
    return None


def check_request(req: Request, cluster: Cluster | None = None) -> None:
    """Raise :class:`LaunchError` when ``req`` can never start (see :func:`problem`); nothing
    when it fits or when the cluster cannot be read (``sbatch`` then has the last word)."""
    cluster = cluster if cluster is not None else read_cluster()
    if cluster is None:
        return
    why = problem(req, cluster)
    if why is not None:
        raise LaunchError(f"{req.what} not submitted: it could never start: {why}")


def default_cpus_per_node(partition: str | None = None, fallback: int = 8) -> int:
    """CPUs of the smallest node of ``partition`` (default: the default partition), so that a
    default request fits every node; ``fallback`` without a readable cluster."""
    cluster = read_cluster()
    if cluster is None:
        return fallback
    part = cluster.partitions.get(partition) if partition else cluster.default_partition
    nodes = cluster.partition_nodes(part) if part is not None else list(cluster.nodes.values())
    return min((n.cpus for n in nodes if n.cpus > 0), default=fallback)


def default_mem_gb(partition: str | None = None, fallback: int = 32) -> int:
    """Memory (GB, whole) of the smallest node of ``partition``; ``fallback`` without a cluster."""
    cluster = read_cluster()
    if cluster is None:
        return fallback
    part = cluster.partitions.get(partition) if partition else cluster.default_partition
    nodes = cluster.partition_nodes(part) if part is not None else list(cluster.nodes.values())
    return min((n.mem_mb // 1024 for n in nodes if n.mem_mb >= 1024), default=fallback)


def never_starts(reason: str, cluster: Cluster | None = None) -> bool:
    """Whether a PENDING ``reason`` (sacct's Reason) can never clear: one of
    :data:`NEVER_CLEARS`, or ``ReqNodeNotAvail`` naming nodes the cluster does not have."""
    head = reason.split(",")[0].strip()
    if head in NEVER_CLEARS:
        return True
    if head == "ReqNodeNotAvail" and "UnavailableNodes:" in reason:
        cluster = cluster if cluster is not None else read_cluster()
        wanted = expand_hostlist(reason.split("UnavailableNodes:", 1)[1].strip())
        return cluster is not None and bool(wanted) and not any(n in cluster.nodes for n in wanted)
    return False
