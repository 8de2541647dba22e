"""What actually runs on a node: the user's call, wrapped to write its lineage sidecar.

:class:`TrackedCall` records node, start, end, restarts, outcome and reported outputs.
:class:`Resumable` is also a ``submitit.helpers.Checkpointable``: on pre-emption or time-out
(USR2 from SLURM) submitit asks it for a checkpoint; it returns its own resubmission, submitit
requeues the job, and the same call runs again. The call must therefore resume from its own
checkpoints (``hpc_seg.runtime.checkpoint.load_latest``), losing at most the unfinished epoch.
"""

from __future__ import annotations

import logging
import os
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from submitit.helpers import Checkpointable, DelayedSubmission

from hpc_seg.launch.lineage import now_iso, task_context, write_sidecar

log = logging.getLogger(__name__)

_OUTPUTS: list[str] = []


def record_outputs(*paths: str | Path) -> None:
    """Called from inside a task: these paths are its outputs (they go into the lineage row)."""
    _OUTPUTS.extend(str(p) for p in paths)


def _is_main_rank() -> bool:
    return int(os.environ.get("SLURM_PROCID", os.environ.get("RANK", "0"))) == 0


class TrackedCall:
    """``fn(*args)`` plus lineage bookkeeping (only global rank 0 writes the sidecar)."""

    def __init__(self, fn: Callable[..., Any], args: tuple, sidecars: str | Path | None):
        self.fn, self.args = fn, tuple(args)
        self.sidecars = Path(sidecars) if sidecars else None

    def __call__(self) -> Any:
        track = self.sidecars is not None and _is_main_rank()
        job_id, node, restarts = task_context()
        if track:
            write_sidecar(self.sidecars, job_id, node=node, started_at=now_iso(), state="RUNNING",
                          restarts=restarts, ended_at=None)
        _OUTPUTS.clear()
        try:
            result = self.fn(*self.args)
        except BaseException as exc:
            if track:
                last = traceback.format_exception_only(type(exc), exc)[-1].strip()
                write_sidecar(self.sidecars, job_id, ended_at=now_iso(), state="FAILED",
                              exit_reason=last[:500], outputs=list(_OUTPUTS))
            raise
        if track:
            outputs = list(_OUTPUTS) + ([str(result)] if isinstance(result, Path) else [])
            write_sidecar(self.sidecars, job_id, ended_at=now_iso(), state="COMPLETED",
                          exit_reason="ok", outputs=outputs)
        return result

    def __repr__(self) -> str:
        return f"{type(self).__name__}({getattr(self.fn, '__name__', self.fn)!r})"


class Resumable(TrackedCall, Checkpointable):
    """A :class:`TrackedCall` that requeues itself when pre-empted or timed out."""

    def checkpoint(self, *args: Any, **kwargs: Any) -> DelayedSubmission:
        # The call's own per-epoch checkpoints hold the state; the resubmission is the same call.
        log.warning("pre-empted or timed out: requeueing; the call resumes from its last checkpoint")
        return DelayedSubmission(self)
