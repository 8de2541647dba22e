"""Chain stages of a job definition, skipping the ones already finished.

A job TOML names its stages in order (``[job] stages = [...]``); every stage reads its own table of
the same TOML (validated into that stage's typed config) and the outputs of earlier stages through
the shared :class:`~hpc_seg.stage.Context`. A finished stage leaves a small JSON record under
``<out>/.stages/``; a re-run loads that record instead of running the stage again, which is how
``hpc-seg run`` resumes after a failure or Ctrl-C. ``--force STAGE`` drops one record.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from hpc_seg.stage import Context, StageFn
from hpc_seg.storage.shards import atomic_write_bytes

log = logging.getLogger(__name__)


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
        # one console line per stage (when it ends); its start only with -v
        log.debug("stage %-20s starting", name)
        t0 = time.perf_counter()
        result = fn(ctx)
        seconds = time.perf_counter() - t0
        ctx.results[name] = result
        atomic_write_bytes(json.dumps({"stage": name, "seconds": seconds, "result": result},
                                      indent=2, default=str).encode(), record)
        log.info("stage %-20s done in %.1f s", name, seconds)
    return ctx.results
