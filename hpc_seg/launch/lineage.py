"""Lineage: one SQLite row per submitted task, so that every result traces back to its job.

The table ``<run_dir>/lineage.sqlite`` (table ``tasks``) is written only by the submitting side
(submit, gather, the ``jobs`` commands) in short transactions. A running task never opens it:
SQLite locking is unreliable on the network file systems clusters share, so the task writes a small
JSON sidecar ``<run_dir>/lineage/<job_id>.json`` atomically (node, start, end, restarts, outcome)
and :meth:`Lineage.refresh` merges sidecars and ``sacct`` states into the table.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from hpc_seg.errors import InputError
from hpc_seg.launch.status import SACCT, SacctCache

COLUMNS = {
    "job_id": "TEXT PRIMARY KEY",     # submitit/SLURM id: '123' or '123_4' (array task)
    "array_job_id": "TEXT",           # '123' for every task of that array
    "array_index": "INTEGER",         # SLURM_ARRAY_TASK_ID, or NULL
    "task_index": "INTEGER",          # position in the submitted list of specs
    "attempt": "INTEGER",             # 0 at first submission, +1 per `resubmit failed`
    "name": "TEXT",
    "config_hash": "TEXT",
    "executor": "TEXT",               # slurm | local
    "node": "TEXT",
    "submitted_at": "TEXT",           # ISO 8601 UTC
    "started_at": "TEXT",
    "ended_at": "TEXT",
    "state": "TEXT",                  # SUBMITTED, PENDING, RUNNING, COMPLETED, FAILED, CANCELLED...
    "exit_reason": "TEXT",            # 'ok', the exception line, or sacct state + exit code
    "restarts": "INTEGER",            # requeues after pre-emption / time-out (SLURM_RESTART_COUNT)
    "outputs": "TEXT",                # JSON list of output paths the task reported
    "inputs": "TEXT",                 # JSON dict of what the task consumed (e.g. checkpoint SHA-256)
    "stdout": "TEXT",
    "stderr": "TEXT",
}
FINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY",
                   "BOOT_FAIL", "DEADLINE"})
DB_NAME = "lineage.sqlite"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Lineage:
    """The lineage table of one run folder."""

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / DB_NAME
        self.sidecars = self.run_dir / "lineage"

    @classmethod
    def open_existing(cls, run_dir: str | Path) -> "Lineage":
        """The lineage of a run folder that must already have one (for the ``jobs`` commands)."""
        lin = cls(run_dir)
        if not lin.path.is_file():
            raise InputError(f"{lin.path}: no lineage table here (is {run_dir} a run folder "
                             "that submitted jobs?)")
        return lin

    def _connect(self) -> sqlite3.Connection:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(self.path, timeout=30)
        con.row_factory = sqlite3.Row
        cols = ", ".join(f"{k} {v}" for k, v in COLUMNS.items())
        con.execute(f"CREATE TABLE IF NOT EXISTS tasks ({cols})")
        # A table written by an older hpc-seg lacks newer columns: add them, keep its rows.
        present = {r[1] for r in con.execute("PRAGMA table_info(tasks)")}
        for name, kind in COLUMNS.items():
            if name not in present:
                con.execute(f"ALTER TABLE tasks ADD COLUMN {name} {kind}")
        return con

    def add(self, rows: list[dict[str, Any]]) -> None:
        """Insert (or replace) rows at submission; unknown keys are an error."""
        if not rows:
            return
        keys = list(COLUMNS)
        with closing(self._connect()) as con, con:
            con.executemany(f"INSERT OR REPLACE INTO tasks ({', '.join(keys)}) VALUES "
                            f"({', '.join('?' for _ in keys)})",
                            [tuple(_check(r).get(k) for k in keys) for r in rows])

    def update(self, job_id: str, **fields: Any) -> None:
        _check(fields)
        if not fields:
            return
        with closing(self._connect()) as con, con:
            con.execute(f"UPDATE tasks SET {', '.join(f'{k} = ?' for k in fields)} WHERE job_id = ?",
                        (*fields.values(), job_id))

    def rows(self) -> list[dict[str, Any]]:
        """All rows, in submission order."""
        with closing(self._connect()) as con:
            cur = con.execute("SELECT * FROM tasks ORDER BY submitted_at, task_index, attempt, job_id")
            return [dict(r) for r in cur.fetchall()]

    def refresh(self, cache: SacctCache = SACCT, *, force: bool = False) -> list[dict[str, Any]]:
        """Merge task sidecars and (cached) sacct states into rows not yet final; return all rows."""
        rows = self.rows()
        open_rows = [r for r in rows if r["state"] not in FINAL]
        slurm_ids = [r["job_id"] for r in open_rows if r["executor"] == "slurm"]
        infos = cache.infos(slurm_ids, force=force) if slurm_ids else {}
        for row in open_rows:
            fields = merged_fields(row, read_sidecar(self.sidecars, row["job_id"]),
                                   infos.get(row["job_id"]))
            if fields:
                self.update(row["job_id"], **fields)
                row.update(fields)
        return rows


def merged_fields(row: dict[str, Any], side: dict[str, Any] | None, info: Any) -> dict[str, Any]:
    """What changed for ``row`` given the task's sidecar and its sacct line (either may be None)."""
    new: dict[str, Any] = {}
    if side:
        for key in ("node", "started_at", "ended_at", "restarts", "outputs", "exit_reason"):
            if side.get(key) is not None:
                new[key] = json.dumps(side[key]) if key == "outputs" else side[key]
        if side.get("state"):
            new["state"] = side["state"]
    if info is not None:
        # sacct is authoritative for what happens outside the Python process (cancel, time-out).
        sidecar_final = new.get("state") in FINAL
        if info.terminal and not (sidecar_final and info.state in ("COMPLETED", "FAILED")):
            new["state"] = info.state
            if info.state != "COMPLETED" and not new.get("exit_reason"):
                new["exit_reason"] = f"{info.raw_state} (exit {info.exit_code})"
            new.setdefault("ended_at", info.end if info.end not in ("", "Unknown") else now_iso())
        elif not sidecar_final and not info.terminal:
            new["state"] = info.state
        if info.node and info.node != "None assigned":
            new.setdefault("node", info.node)
    return {k: v for k, v in new.items() if row.get(k) != v}


def _check(fields: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(fields) - set(COLUMNS))
    if unknown:
        raise ValueError(f"unknown lineage column(s) {unknown}; valid: {sorted(COLUMNS)}")
    return fields


# ---- task side -------------------------------------------------------------------------------

def sidecar_path(sidecars: Path, job_id: str) -> Path:
    return Path(sidecars) / f"{job_id}.json"


def read_sidecar(sidecars: Path, job_id: str) -> dict[str, Any] | None:
    try:
        return json.loads(sidecar_path(sidecars, job_id).read_text())
    except (OSError, ValueError):
        return None


def write_sidecar(sidecars: Path, job_id: str, **fields: Any) -> None:
    """Merge ``fields`` into the task's sidecar (atomically; called inside the running task)."""
    record = read_sidecar(sidecars, job_id) or {"job_id": job_id}
    record.update(fields)
    # Not shards.atomic_write_bytes: that module imports pyarrow, 0.2 s more start-up in every task.
    path = sidecar_path(sidecars, job_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    tmp.write_text(json.dumps(record, default=str))
    os.replace(tmp, path)


def task_context() -> tuple[str, str, int]:
    """(job id, node, restart count) of the running task."""
    import submitit

    try:
        env = submitit.JobEnvironment()
        job_id, node = str(env.job_id), env.hostname
    except RuntimeError:  # not inside a submitit job
        job_id, node = f"pid{os.getpid()}", socket.gethostname()
    return job_id, node, int(os.environ.get("SLURM_RESTART_COUNT", "0"))
