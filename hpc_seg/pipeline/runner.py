"""Chain stages of a job definition, skipping the ones already finished with the same inputs.

A job TOML names its stages in order (``[job] stages = [...]``); every stage reads its own table of
the same TOML (validated into that stage's typed config) and the outputs of earlier stages through
the shared :class:`~hpc_seg.stage.Context`. A finished stage leaves a small JSON record under
``<out>/.stages/``; a re-run loads that record instead of running the stage again, which is how
``hpc-seg run`` resumes after a failure or Ctrl-C. ``--force STAGE`` drops one record.

A record is only loaded while it still describes the stage: it carries a fingerprint of the
tables the stage reads, of the files and folders those tables and the earlier stages' results
name (names, sizes, modification times), and of the fingerprints of those earlier stages. A
changed config or input, or a re-run earlier stage, re-runs the stage; so does a record whose
output paths are gone. An interrupted or failed stage leaves no record.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpc_seg.stage import Context, StageFn
from hpc_seg.storage.shards import atomic_write_bytes

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StagePlan:
    """What a stage reads: its tables and the earlier stages whose results it uses."""

    tables: frozenset[str]
    after: frozenset[str]


#: keys that name where a stage writes (logs, databases), not what it reads: fingerprinting
#: them would re-run the stage whenever it (or a later stage) wrote there
OUTPUT_KEYS = frozenset({"folder", "out", "storage"})


def _paths_in(value: Any) -> list[Path]:
    """Existing files and folders named by the strings inside ``value`` (nested tables too)."""
    if isinstance(value, dict):
        return [p for k, v in value.items() if k not in OUTPUT_KEYS for p in _paths_in(v)]
    if isinstance(value, (list, tuple)):
        return [p for v in value for p in _paths_in(v)]
    if isinstance(value, str) and value and "://" not in value and len(value) < 4096 \
            and "\n" not in value:
        try:
            path = Path(value)
            return [path] if path.exists() else []
        except (OSError, ValueError):
            return []
    return []


def tree_state(path: Path) -> list[Any]:
    """Names, sizes and modification times of a file or every file under a folder."""
    if path.is_file():
        st = path.stat()
        return [st.st_size, st.st_mtime_ns]
    state: list[Any] = []
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            try:
                st = os.stat(os.path.join(root, name))
            except OSError:         # vanished meanwhile: it simply is not part of the state
                continue
            state.append([os.path.relpath(os.path.join(root, name), path), st.st_size,
                          st.st_mtime_ns])
    return state


def stage_fingerprint(ctx: Context, plan: StagePlan, fingerprints: dict[str, str]) -> str:
    """A short hash of everything :class:`StagePlan` says the stage reads (see module doc)."""
    tables = {t: ctx.tables.get(t) for t in sorted(plan.tables)}
    used = {s: ctx.results.get(s) for s in sorted(plan.after) if s in ctx.results}
    paths = sorted({str(p.resolve()) for p in _paths_in(tables) + _paths_in(used)})
    payload = {"tables": tables, "after": {s: fingerprints.get(s) for s in sorted(plan.after)},
               "inputs": {p: tree_state(Path(p)) for p in paths}}
    blob = json.dumps(payload, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _stale_reason(record: dict[str, Any], fingerprint: str) -> str | None:
    """Why a finished stage's record no longer stands for it (None: it does)."""
    if record.get("fingerprint") != fingerprint:
        return ("its config or inputs changed since it finished" if record.get("fingerprint")
                else "its record predates input fingerprints")
    gone = [v for v in record.get("result", {}).values()
            if isinstance(v, str) and os.path.isabs(v) and not os.path.exists(v)]
    return f"its output {gone[0]} is gone" if gone else None


def run_stages(stages: list[tuple[str, StageFn]], ctx: Context,
               force: frozenset[str] = frozenset(),
               plans: dict[str, StagePlan] | None = None) -> dict[str, dict[str, Any]]:
    """Run ``stages`` in order; return every stage's result (loaded or fresh).

    ``plans`` (from :func:`hpc_seg.pipeline.job.plan_job`) say what each stage reads; a stage
    without a plan is taken to read its own table and every earlier stage's result.
    """
    records = ctx.out / ".stages"
    fingerprints: dict[str, str] = {}
    for name, fn in stages:
        plan = (plans or {}).get(name) or StagePlan(frozenset({name}), frozenset(ctx.results))
        fingerprint = fingerprints[name] = stage_fingerprint(ctx, plan, fingerprints)
        record = records / f"{name}.json"
        if record.exists() and name not in force:
            saved = json.loads(record.read_text())
            why = _stale_reason(saved, fingerprint)
            if why is None:
                ctx.results[name] = saved["result"]
                log.info("stage %-20s already finished (%s); skipping", name, record)
                continue
            log.info("stage %-20s finished before, but %s: running it again", name, why)
        # one console line per stage (when it ends); its start only with -v
        log.debug("stage %-20s starting", name)
        ctx.start_stage()
        t0 = time.perf_counter()
        result = fn(ctx)
        seconds = time.perf_counter() - t0
        ctx.results[name] = result
        atomic_write_bytes(json.dumps({"stage": name, "seconds": seconds,
                                       "fingerprint": fingerprint, "result": result},
                                      indent=2, default=str).encode(), record)
        log.info("stage %-20s done in %.1f s", name, seconds)
    return ctx.results
