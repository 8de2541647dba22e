"""How many CPUs this process may use: one rule for torch threads, process pools and Ray.

A process owns the CPUs of its allocation, not the whole node: on a SLURM node a job step gets
``SLURM_CPUS_PER_TASK`` CPUs and an affinity mask, in a container a cgroup CPU quota, and a Ray
task sets ``OMP_NUM_THREADS`` to the CPUs it reserved. torch's default (every core of the node)
oversubscribes all of these: on a busy 2-core machine training fell from 2.6-3.1 to 0.4 images/s.
The rule takes the smallest of the limits that are set; an explicit setting (``threads`` or
``workers`` in a config, ``--threads`` on the command line) wins over all of them.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Allocation:
    """CPUs this process may use, and which limit decided it."""

    cpus: int
    source: str


def _cgroup_quota(cgroup_root: Path, proc_cgroup: Path) -> int | None:
    """CPUs granted by the tightest cgroup CPU quota over this process's cgroup (v2, then v1)."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None
    best: float | None = None
    for line in lines:
        _, controllers, rel = line.split(":", 2)
        rel_parts = [p for p in rel.split("/") if p]
        if controllers == "":  # v2: cpu.max = "QUOTA PERIOD" or "max PERIOD"
            files = [("cpu.max", None)]
            base = cgroup_root
        elif "cpu" in controllers.split(","):  # v1: cfs_quota_us (-1 = none) / cfs_period_us
            files = [("cpu.cfs_quota_us", "cpu.cfs_period_us")]
            base = next((cgroup_root / d for d in ("cpu,cpuacct", "cpu") if (cgroup_root / d).is_dir()),
                        cgroup_root / "cpu")
        else:
            continue
        # Every ancestor's quota applies too, so walk from the process's cgroup up to the root.
        for depth in range(len(rel_parts), -1, -1):
            folder = base.joinpath(*rel_parts[:depth])
            for quota_file, period_file in files:
                try:
                    if period_file is None:
                        quota_s, period_s = (folder / quota_file).read_text().split()[:2]
                    else:
                        quota_s = (folder / quota_file).read_text().strip()
                        period_s = (folder / period_file).read_text().strip()
                    if quota_s == "max" or int(quota_s) <= 0:
                        continue
                    cpus = int(quota_s) / int(period_s)
                except (OSError, ValueError):
                    continue
                best = cpus if best is None else min(best, cpus)
    return None if best is None else max(1, math.ceil(best))


def _positive_int(value: str | None) -> int | None:
    try:
        n = int(value) if value not in (None, "") else None
    except ValueError:
        return None
    return n if n and n > 0 else None


def allocated_cpus(environ: dict[str, str] | None = None, affinity: set[int] | None = None,
                   cgroup_root: Path = Path("/sys/fs/cgroup"),
                   proc_cgroup: Path = Path("/proc/self/cgroup"), local_ranks: int = 1) -> Allocation:
    """The CPUs this process may use: the smallest of its affinity mask, ``SLURM_CPUS_PER_TASK``,
    ``OMP_NUM_THREADS`` (set by Ray for its tasks) and the cgroup CPU quota.

    ``local_ranks`` processes of one job started side by side outside SLURM (local DDP) share the
    mask and the quota, so each gets its share; SLURM gives every task its own CPUs. Every input is
    injectable for tests; by default this process's own.
    """
    env = os.environ if environ is None else environ
    if affinity is None:
        try:
            affinity = os.sched_getaffinity(0)
        except AttributeError:  # not Linux
            affinity = set(range(os.cpu_count() or 1))
    limits = {"affinity mask": len(affinity) or 1}
    for name in ("SLURM_CPUS_PER_TASK", "OMP_NUM_THREADS"):
        n = _positive_int(env.get(name))
        if n is not None:
            limits[name] = n
    quota = _cgroup_quota(cgroup_root, proc_cgroup)
    if quota is not None:
        limits["cgroup CPU quota"] = quota
    if local_ranks > 1 and "SLURM_CPUS_PER_TASK" not in limits:
        for shared in ("affinity mask", "cgroup CPU quota"):
            if shared in limits:
                limits[shared] = max(1, limits[shared] // local_ranks)
    source = min(limits, key=lambda k: (limits[k], k != "affinity mask"))
    detail = ", ".join(f"{k} {v}" for k, v in limits.items())
    return Allocation(limits[source], f"{source}; limits: {detail}")


def resolve_threads(explicit: int | None = 0, allocation: Allocation | None = None) -> Allocation:
    """``explicit`` when it is > 0, else the process's allocation."""
    if explicit and explicit > 0:
        return Allocation(int(explicit), "explicit setting")
    return allocation or allocated_cpus()


def default_workers(explicit: int | None = 0) -> int:
    """Worker processes for a pool (ingest, generators, shard writers): ``explicit`` or the
    allocation's CPUs."""
    return resolve_threads(explicit).cpus


def configure_torch_threads(explicit: int | None = 0, local_ranks: int = 1) -> int:
    """Set torch's intra-op threads by the rule above (logged once per decision); returns it."""
    import torch

    choice = resolve_threads(explicit, allocated_cpus(local_ranks=local_ranks) if not explicit else None)
    if torch.get_num_threads() != choice.cpus:
        torch.set_num_threads(choice.cpus)
    _log_once(choice)
    return choice.cpus


@cache
def _log_once(choice: Allocation) -> None:
    log.info("torch CPU threads: %d (%s)", choice.cpus, choice.source)
