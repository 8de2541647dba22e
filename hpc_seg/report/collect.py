"""Find what a run folder holds: stage records, CSV tables, figures, Optuna studies, lineage
tables and ingest issues. Works on ``hpc-seg run`` output and on a single stage's output alike:
everything is found by name under the folder, nothing assumes a particular job."""

from __future__ import annotations

import ast
import json
import logging
import os
import re
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

log = logging.getLogger(__name__)

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


#: result keys that are bookkeeping, not results (digests, fingerprints)
_HIDDEN_KEY = re.compile(r"(sha256|sha1|md5|digest|fingerprint|hash)$", re.IGNORECASE)
_HEX_DIGEST = re.compile(r"[0-9a-f]{32,128}")
_REPR = re.compile(r"^[A-Za-z_][\w.]*\(.*\)$", re.DOTALL)


@dataclass
class StageRow:
    """One finished stage, readable: duration, when, and its outputs as (name, text, is_path)."""

    stage: str
    seconds: float | None
    finished: datetime | None
    outputs: list[tuple[str, str, bool]]


def _from_repr(text: str) -> dict[str, Any] | None:
    """The keyword values of an object repr (``LabelsSummary(out_dir='...', stacks=11)``), which
    older stage records hold; None when it is not one."""
    try:
        node = ast.parse(text, mode="eval").body
    except (SyntaxError, ValueError):
        return None
    if not isinstance(node, ast.Call) or not node.keywords:
        return None
    out = {}
    for kw in node.keywords:
        try:
            out[kw.arg] = ast.literal_eval(kw.value)
        except (ValueError, SyntaxError):
            continue
    return out


def readable(value: Any, run: Path, depth: int = 0) -> tuple[str, bool] | None:
    """A stage result value in words: (text, is_path); None for what a reader never needs."""
    from hpc_seg.report import numbers

    if isinstance(value, bool):
        return ("yes" if value else "no"), False
    if isinstance(value, (int, float)):
        return numbers.number(value), False
    if value is None:
        return None
    if isinstance(value, str):
        if _HEX_DIGEST.fullmatch(value):
            return None
        if _REPR.match(value) and (parsed := _from_repr(value)) is not None:
            return readable(parsed, run, depth)
        if value.startswith("/") or value.startswith("sqlite:///"):
            path = Path(value.removeprefix("sqlite:///"))
            try:
                return str(path.relative_to(run)) or ".", True
            except ValueError:
                return str(path), True
        return value, False
    if isinstance(value, dict):
        if depth > 0 and any(isinstance(v, (dict, list)) for v in value.values()):
            return f"{len(value)} entries", False
        parts = []
        for k, v in value.items():
            if _HIDDEN_KEY.search(str(k)):
                continue
            shown = readable(v, run, depth + 1)
            if shown is not None:
                parts.append(f"{k} {shown[0]}")
        return ", ".join(parts) if parts else None, False
    if isinstance(value, (list, tuple)):
        items = [readable(v, run, depth + 1) for v in value]
        texts = [t[0] for t in items if t is not None]
        if len(texts) > 6:
            return f"{len(texts)} items", False
        return ", ".join(texts), False
    return type(value).__name__.lower(), False


def stage_records(run: Path) -> list[StageRow]:
    """One row per finished stage (``.stages/*.json``), in the order they finished, with
    readable outputs: paths relative to the run, numbers rounded, no digests or object reprs."""
    rows = []
    run = Path(run).resolve()
    for rec in sorted((run / ".stages").glob("*.json"), key=lambda p: p.stat().st_mtime):
        finished = datetime.fromtimestamp(rec.stat().st_mtime)
        try:
            data = json.loads(rec.read_text())
        except (OSError, ValueError) as exc:
            rows.append(StageRow(rec.stem, None, finished,
                                 [("record", f"unreadable: {type(exc).__name__}", False)]))
            continue
        result = data.get("result", {})
        outputs = []
        for key, value in (result.items() if isinstance(result, dict) else [("result", result)]):
            if _HIDDEN_KEY.search(str(key)):
                continue
            shown = readable(value, run)
            if shown is not None and shown[0]:
                outputs.append((str(key), shown[0], shown[1]))
        seconds = data.get("seconds")
        rows.append(StageRow(str(data.get("stage", rec.stem)),
                             float(seconds) if isinstance(seconds, (int, float)) else None,
                             finished, outputs))
    return rows


def csv_tables(run: Path, exclude: frozenset[Path] = frozenset()) -> list[Table]:
    """Every CSV under ``run`` but those in ``exclude`` (resolved paths), shallow first, each
    titled by its name and folder."""
    run = Path(run)
    tables = []
    for p in _by_depth(walk(run, ".csv"), run):
        if p.resolve() in exclude:
            continue
        if len(tables) == MAX_FILES:
            log.info("report: more than %d CSV files under %s; the rest are not shown", MAX_FILES, run)
            break
        title = p.stem.replace("_", " ")
        if p.stat().st_size > MAX_TABLE_BYTES:
            log.info("report: %s is %d bytes; listed, not shown", p, p.stat().st_size)
            tables.append(Table(p, title, pd.DataFrame(), 0))
            continue
        try:
            df = pd.read_csv(p)
        except (OSError, ValueError) as exc:   # an empty or broken CSV is shown as such
            df = pd.DataFrame({"note": [f"unreadable: {type(exc).__name__}: {exc}"]})
        tables.append(Table(p, title, df, len(df)))
    return tables


def figures(run: Path, exclude: frozenset[Path] = frozenset()) -> list[Path]:
    """PNG figures under ``run`` but those in ``exclude`` (shallow first, at most MAX_FILES)."""
    found = [p for p in _by_depth(walk(Path(run), ".png"), Path(run)) if p.resolve() not in exclude]
    return found[:MAX_FILES]


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

