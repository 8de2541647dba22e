"""Gentle job-state polling: one cached ``sacct`` call for all jobs of interest, with back-off.

Clusters rate-limit users who poll hard, so a :class:`SacctCache` calls ``sacct`` at most once
per interval, for every job it was asked about in one command line. The interval starts at
``min_interval_s`` and grows by ``factor`` up to ``max_interval_s`` while no state changes; a change
(or :meth:`SacctCache.poke`) resets it.
"""

from __future__ import annotations

import logging
import subprocess
import threading
import time
from dataclasses import dataclass

log = logging.getLogger(__name__)

# sacct states after which a job will not run again.
TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY",
                      "BOOT_FAIL", "DEADLINE", "PREEMPTED_FINAL", "REVOKED"})
_FIELDS = ("JobID", "State", "NodeList", "ExitCode", "Start", "End", "Reason")


@dataclass(frozen=True)
class JobInfo:
    """One line of sacct for a job or array task."""

    job_id: str
    state: str
    """First word of sacct's State ('CANCELLED by 0' -> 'CANCELLED')."""
    raw_state: str
    node: str
    exit_code: str
    start: str
    end: str
    reason: str

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL


def base_id(job_id: str) -> str:
    """The id sacct needs to list a job and all its array tasks ('123_4' -> '123')."""
    return job_id.split("_")[0].split(".")[0]


def parse_sacct(text: str) -> dict[str, JobInfo]:
    """Parse ``sacct -n -P -X -o JobID,State,NodeList,ExitCode,Start,End,Reason``.

    Pending array ranges such as ``12_[3-5%2]`` expand to one entry per task.
    """
    out: dict[str, JobInfo] = {}
    for line in text.splitlines():
        parts = line.split("|")
        if len(parts) < len(_FIELDS) or not parts[0] or "." in parts[0]:
            continue
        jid, raw, node, code, start, end, reason = (p.strip() for p in parts[:len(_FIELDS)])
        state = raw.split()[0] if raw else "UNKNOWN"
        for one in _expand(jid):
            out[one] = JobInfo(one, state, raw, node, code, start, end, reason)
    return out


def _expand(jid: str) -> list[str]:
    if "_[" not in jid:
        return [jid]
    base, rest = jid.split("_[", 1)
    ids = []
    for chunk in rest.rstrip("]").split("%")[0].split(","):
        lo, _, hi = chunk.partition("-")
        ids += [f"{base}_{i}" for i in range(int(lo), int(hi or lo) + 1)]
    return ids


class SacctCache:
    """In-process cache of sacct answers, refreshed at most once per (backing-off) interval."""

    def __init__(self, min_interval_s: float = 1.0, max_interval_s: float = 30.0, factor: float = 1.5):
        self.min_interval_s, self.max_interval_s, self.factor = min_interval_s, max_interval_s, factor
        self.interval_s = min_interval_s
        self.calls = 0
        self._info: dict[str, JobInfo] = {}
        self._last = float("-inf")
        self._lock = threading.Lock()

    def poke(self) -> None:
        """Something happened (a submit, a cancel): let the next query refresh soon."""
        self.interval_s = self.min_interval_s
        self._last = min(self._last, time.monotonic() - self.min_interval_s)

    def infos(self, job_ids: list[str], *, force: bool = False) -> dict[str, JobInfo]:
        """Latest known info of ``job_ids`` (missing ids: sacct has not seen them yet)."""
        with self._lock:
            wanted = [j for j in job_ids if not (j in self._info and self._info[j].terminal)]
            due = time.monotonic() - self._last >= (0 if force else self.interval_s)
            if wanted and due:
                self._refresh(wanted)
            return {j: self._info[j] for j in job_ids if j in self._info}

    def _refresh(self, job_ids: list[str]) -> None:
        ids = sorted({base_id(j) for j in job_ids})
        cmd = ["sacct", "-n", "-P", "-X", "-o", ",".join(_FIELDS), "-j", ",".join(ids)]
        self.calls += 1
        self._last = time.monotonic()
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=True).stdout
        except (OSError, subprocess.SubprocessError) as exc:
            log.warning("sacct failed (%s); job states may be stale", exc)
            self.interval_s = min(self.max_interval_s, self.interval_s * self.factor)
            return
        new = parse_sacct(out)
        changed = any(self._info.get(j) is None or self._info[j].raw_state != i.raw_state
                      for j, i in new.items())
        self._info.update(new)
        self.interval_s = (self.min_interval_s if changed
                           else min(self.max_interval_s, self.interval_s * self.factor))


# One cache per process, shared by every waiter (like submitit's class-level watcher).
SACCT = SacctCache()


#: squeue is asked for live PENDING reasons at most this often (sacct's Reason of a pending
#: job is the one it was queued with: "Dependency" stays so after it became
#: "DependencyNeverSatisfied")
SQUEUE_INTERVAL_S = 10.0
_last_squeue = [float("-inf")]


def live_reasons(job_ids: list[str]) -> dict[str, str]:
    """Job id → squeue's current reason, for pending jobs (at most one call per interval)."""
    now = time.monotonic()
    if not job_ids or now - _last_squeue[0] < SQUEUE_INTERVAL_S:
        return {}
    _last_squeue[0] = now
    ids = sorted({base_id(j) for j in job_ids})
    try:
        out = subprocess.run(["squeue", "-h", "-r", "-t", "PENDING", "-o", "%i|%r", "-j",
                              ",".join(ids)], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    return dict(line.split("|", 1) for line in out.splitlines() if "|" in line)


def fail_if_never_starts(job_ids: list[str], infos: dict[str, JobInfo]) -> None:
    """Cancel the jobs that SLURM keeps PENDING for a reason that can never clear
    (:func:`~hpc_seg.launch.capacity.never_starts`) and raise one :class:`LaunchError` naming
    the job, the reason, and what the cluster has. ``infos``: what sacct knows (a pending job
    may not be in sacct yet: squeue is asked about it too)."""
    from hpc_seg.errors import LaunchError
    from hpc_seg.launch.capacity import describe, never_starts, read_cluster

    waiting = [j for j in job_ids if j not in infos or infos[j].state == "PENDING"]
    live = live_reasons(waiting)
    stuck = [JobInfo(j, "PENDING", "PENDING", "", "", "", "",
                     live.get(j) or (infos[j].reason if j in infos else "")) for j in waiting]
    stuck = [i for i in stuck if never_starts(i.reason)]
    if not stuck:
        return
    ids = sorted({base_id(i.job_id) for i in stuck})
    try:
        subprocess.run(["scancel", *ids], capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("scancel %s failed (%s)", " ".join(ids), exc)
    cluster = read_cluster()
    has = "; ".join(describe(cluster, p) for p in cluster.partitions.values()) if cluster else ""
    raise LaunchError(f"job {stuck[0].job_id}" + (f" (and {len(stuck) - 1} more)" if len(stuck) > 1
                                                 else "")
                      + f" could never start: SLURM keeps it PENDING ({stuck[0].reason}); "
                      + (f"{has}; " if has else "") + f"cancelled {', '.join(ids)}")
