"""Find what a run folder holds: stage records, CSV tables, figures, Optuna studies, lineage
tables and ingest issues. Works on ``hpc-seg run`` output and on a single stage's output alike:
everything is found by name under the folder, nothing assumes a particular job."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd

log = logging.getLogger(__name__)

#: tables a reader looks for first, in this order, with the heading they get
KNOWN_TABLES = {
    "ef_table.csv": "EF agreement (cardiac)",
    "dice_table.csv": "Dice (cardiac)",
    "dice_summary.csv": "Dice (HAD-Net)",
    "summary.csv": "Prediction summary",
}
#: folders never searched: the report's own images, Tune's internals, temporaries
SKIP_DIRS = {"report_files", "__pycache__", "checkpoints", "submitit"}
#: Ray Tune's per-trial copy of the history.csv each trial writes itself
SKIP_FILES = {"progress.csv"}
MAX_FILES = 40          # per kind: a folder of 1,000 trials must still give a readable page
MAX_TABLE_BYTES = 2_000_000


def walk(run: Path, suffix: str, max_depth: int = 8) -> Iterator[Path]:
    """Files under ``run`` ending in ``suffix``, shallow first, hidden/skipped folders left out."""
    run = Path(run)
    for dirpath, dirnames, filenames in os.walk(run):
        rel = Path(dirpath).relative_to(run)
        depth = len(rel.parts)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in SKIP_DIRS
                             and depth < max_depth)
        for name in sorted(filenames):
            if name.endswith(suffix) and not name.startswith(".") and name not in SKIP_FILES:
                yield Path(dirpath) / name


def _by_depth(paths: Iterator[Path], run: Path) -> list[Path]:
    return sorted(paths, key=lambda p: (len(p.relative_to(run).parts), str(p)))


@dataclass
class Table:
    """One CSV table for the page."""

    path: Path
    title: str
    frame: pd.DataFrame
    rows_total: int


def stage_records(run: Path) -> pd.DataFrame:
    """One row per finished stage (``.stages/*.json``), in the order they finished."""
    rows = []
    for rec in sorted((Path(run) / ".stages").glob("*.json"), key=lambda p: p.stat().st_mtime):
        try:
            data = json.loads(rec.read_text())
        except (OSError, ValueError) as exc:
            rows.append({"stage": rec.stem, "seconds": None, "finished": None,
                         "result": f"unreadable record: {exc}"})
            continue
        result = data.get("result", {})
        shown = ", ".join(f"{k}={v}" for k, v in result.items()) if isinstance(result, dict) \
            else str(result)
        rows.append({"stage": data.get("stage", rec.stem), "seconds": data.get("seconds"),
                     "finished": datetime.fromtimestamp(rec.stat().st_mtime).isoformat(
                         sep=" ", timespec="seconds"),
                     "result": shown[:400]})
    return pd.DataFrame(rows, columns=["stage", "seconds", "finished", "result"])


def csv_tables(run: Path, max_rows: int = 50) -> list[Table]:
    """Known tables first (EF, Dice...), then every other CSV (transfer, HAD-Net, ...)."""
    run = Path(run)
    paths = _by_depth(walk(run, ".csv"), run)
    known = sorted((p for p in paths if p.name in KNOWN_TABLES),
                   key=lambda p: (list(KNOWN_TABLES).index(p.name), str(p)))
    rest = [p for p in paths if p.name not in KNOWN_TABLES]
    tables = []
    for p in (known + rest)[:MAX_FILES]:
        title = KNOWN_TABLES.get(p.name, p.stem.replace("_", " "))
        if p.stat().st_size > MAX_TABLE_BYTES:
            log.info("report: %s is %d bytes; listed, not shown", p, p.stat().st_size)
            tables.append(Table(p, title, pd.DataFrame({"note": ["too large to show; open the file"]}), 0))
            continue
        try:
            df = pd.read_csv(p)
        except (OSError, ValueError) as exc:   # an empty or broken CSV is shown as such
            df = pd.DataFrame({"note": [f"unreadable: {type(exc).__name__}: {exc}"]})
        tables.append(Table(p, title, df.head(max_rows), len(df)))
    return tables


def figures(run: Path) -> list[Path]:
    """PNG figures under ``run`` (shallow first, at most MAX_FILES)."""
    return _by_depth(walk(Path(run), ".png"), Path(run))[:MAX_FILES]


def ingest_issues(run: Path) -> pd.DataFrame:
    """Ingest ``issues`` tables (Parquet shards) under ``run``, counted by problem."""
    from hpc_seg.storage.shards import read_table, shard_files

    frames = []
    for d in sorted({p.parent for p in walk(Path(run), ".parquet") if p.parent.name == "issues"}):
        if shard_files(d):
            df = read_table(d, columns=["problem", "resolution"]).to_pandas()
            df["table"] = str(d.relative_to(run))
            frames.append(df)
    if not frames:
        return pd.DataFrame(columns=["table", "problem", "resolution", "count"])
    df = pd.concat(frames)
    return (df.groupby(["table", "problem", "resolution"]).size().rename("count").reset_index()
            .sort_values(["table", "count"], ascending=[True, False]))


def lineage_jobs(run: Path) -> pd.DataFrame:
    """Rows of every ``lineage.sqlite`` under ``run`` (read-only): ids, states, nodes, times."""
    from hpc_seg.launch.lineage import DB_NAME

    cols = ["job_id", "name", "executor", "state", "node", "started_at", "ended_at",
            "exit_reason", "restarts"]
    frames = []
    for db in walk(Path(run), DB_NAME):
        try:
            with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as con:
                df = pd.read_sql_query("SELECT * FROM tasks", con)
        except (sqlite3.Error, pd.errors.DatabaseError) as exc:
            log.warning("report: %s: cannot read lineage (%s)", db, exc)
            continue
        df = df[[c for c in cols if c in df.columns]].copy()
        start = pd.to_datetime(df.get("started_at"), errors="coerce", utc=True)
        end = pd.to_datetime(df.get("ended_at"), errors="coerce", utc=True)
        df.insert(7, "wall_s", (end - start).dt.total_seconds().round(1))
        df.insert(0, "run", str(db.parent.relative_to(run)) or ".")
        frames.append(df)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def study_storages(run: Path) -> list[Path]:
    """Optuna SQLite files (``study.db``) under ``run``."""
    return _by_depth(walk(Path(run), "study.db"), Path(run))

