"""What the ``hpc-seg jobs`` commands do, over a run folder's lineage table."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from hpc_seg.errors import InputError, LaunchError
from hpc_seg.launch.lineage import FINAL, Lineage

LIST_COLUMNS = ("job_id", "name", "task_index", "attempt", "state", "node", "started_at",
                "ended_at", "restarts", "exit_reason")


def print_rows(rows: list[dict[str, Any]], columns: tuple[str, ...] = LIST_COLUMNS) -> None:
    """A rich table on stdout (plain when not a terminal)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(*columns, show_lines=False)
    for r in rows:
        table.add_row(*("" if r.get(c) is None else str(r[c]) for c in columns))
    Console(width=200).print(table)


def find_row(run_dir: str | Path, job_id: str) -> dict[str, Any]:
    rows = Lineage.open_existing(run_dir).refresh(force=True)
    for r in rows:
        if r["job_id"] == job_id:
            return r
    raise InputError(f"{run_dir}: no job {job_id!r} in the lineage; known: "
                     f"{', '.join(r['job_id'] for r in rows[:20])}")


def read_log(row: dict[str, Any], stream: str, tail: int) -> str:
    path = Path(row[stream])
    try:
        lines = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        raise InputError(f"{path}: no {stream} log yet (job {row['job_id']} is {row['state']})") from None
    return "\n".join(lines[-tail:] if tail else lines)


def cancel(run_dir: str | Path, job_ids: list[str], all_open: bool) -> list[str]:
    """scancel the given jobs (or every unfinished SLURM job of the run); returns the ids."""
    rows = Lineage.open_existing(run_dir).refresh(force=True)
    if all_open:
        job_ids = [r["job_id"] for r in rows if r["state"] not in FINAL and r["executor"] == "slurm"]
    known = {r["job_id"] for r in rows}
    unknown = [j for j in job_ids if j not in known]
    if unknown:
        raise InputError(f"{run_dir}: job(s) {unknown} are not in this run's lineage")
    if job_ids:
        out = subprocess.run(["scancel", *job_ids], capture_output=True, text=True)
        if out.returncode:
            raise LaunchError(f"scancel {' '.join(job_ids)} failed: {out.stderr.strip()}")
    return job_ids
