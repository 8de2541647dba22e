"""Chain stages of a job definition, skipping the ones already finished.

A job TOML names its stages in order (``[job] stages = [...]``); every stage reads its own table of
the same TOML (validated into that stage's typed config) and the outputs of earlier stages through
the shared :class:`Context`. A finished stage leaves a small JSON record under
``<out>/.stages/``; a re-run loads that record instead of running the stage again, which is how
``hpc-seg run`` resumes after a failure or Ctrl-C. ``--force STAGE`` drops one record.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpc_seg.data.shards import atomic_write_bytes
from hpc_seg.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass
class Context:
    """What stages share: the job's raw tables, its output root, and earlier stages' results."""

    job_file: Path
    out: Path
    tables: dict[str, Any]
    results: dict[str, dict[str, Any]] = field(default_factory=dict)

    def table(self, name: str) -> dict[str, Any]:
        """The TOML table of a stage (empty when the job leaves every value at its default)."""
        value = self.tables.get(name, {})
        if not isinstance(value, dict):
            raise ConfigError(f"{self.job_file}: [{name}] must be a table, but got {value!r}")
        return value

    def where(self, name: str) -> str:
        return f"{self.job_file}: [{name}]"

    def result(self, stage: str, key: str) -> Any:
        """A value an earlier stage returned; a clear error if the job forgot that stage."""
        if stage not in self.results:
            raise ConfigError(f"{self.job_file}: this job needs stage {stage!r} to run before; "
                              f"add it to [job] stages")
        return self.results[stage][key]


StageFn = Callable[[Context], dict[str, Any]]


def run_stages(stages: list[tuple[str, StageFn]], ctx: Context,
               force: frozenset[str] = frozenset()) -> dict[str, dict[str, Any]]:
    """Run ``stages`` in order; return every stage's result (loaded or fresh)."""
    records = ctx.out / ".stages"
    for name, fn in stages:
        record = records / f"{name}.json"
        if record.exists() and name not in force:
            ctx.results[name] = json.loads(record.read_text())["result"]
            log.info("stage %-20s already finished (%s); skipping", name, record)
            continue
        log.info("stage %-20s starting", name)
        t0 = time.perf_counter()
        result = fn(ctx)
        seconds = time.perf_counter() - t0
        ctx.results[name] = result
        atomic_write_bytes(json.dumps({"stage": name, "seconds": seconds, "result": result},
                                      indent=2, default=str).encode(), record)
        log.info("stage %-20s done in %.1f s", name, seconds)
    return ctx.results
