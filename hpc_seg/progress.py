"""A progress display for long work: counts, rate and ETA, on stderr.

It degrades to periodic log lines when stderr is not a terminal (SLURM log files), so batch logs
still show how far a stage got and how fast.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)


class _LogProgress:
    """Fallback for non-interactive output: one log line at most every ``every_s`` seconds."""

    def __init__(self, description: str, total: int | None, unit: str, every_s: float = 10.0,
                 extra_unit: str | None = None):
        self.description, self.total, self.unit, self.every_s = description, total, unit, every_s
        self.extra_unit = extra_unit
        self.done = 0
        self.extra = 0.0
        self.t0 = self._last = time.perf_counter()

    def advance(self, n: int = 1, extra: float = 0.0) -> None:
        self.done += n
        self.extra += extra
        now = time.perf_counter()
        if now - self._last >= self.every_s or (self.total is not None and self.done >= self.total):
            self._last = now
            rate = self.done / max(now - self.t0, 1e-9)
            of = f"/{self.total}" if self.total is not None else ""
            extra = ""
            if self.extra_unit:
                extra = f", {self.extra:.0f} {self.extra_unit} ({self.extra / max(now - self.t0, 1e-9):.1f} {self.extra_unit}/s)"
            log.info("%s: %d%s %s (%.1f %s/s%s)", self.description, self.done, of, self.unit, rate,
                     self.unit, extra)


class _RichProgress:
    def __init__(self, progress, task_id):
        self._progress, self._task = progress, task_id

    def advance(self, n: int = 1, extra: float = 0.0) -> None:
        self._progress.update(self._task, advance=n)
        if extra:
            fields = self._progress.tasks[self._task].fields
            self._progress.update(self._task, extra=fields.get("extra", 0.0) + extra)


def _RateColumn(unit: str, field: str | None = None):
    """A column showing items/s (or a custom field's total and rate) since the task started."""
    from rich.progress import ProgressColumn
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task) -> Text:
            elapsed = task.elapsed or 0.0
            count = task.completed if field is None else task.fields.get(field, 0.0)
            rate = count / elapsed if elapsed > 0 else 0.0
            prefix = "" if field is None else f"{count:.0f} {unit} "
            return Text(f"{prefix}{rate:.1f} {unit}/s")

    return RateColumn()


@contextmanager
def progress_bar(description: str, total: int | None, unit: str = "items",
                 extra_unit: str | None = None) -> Iterator[_LogProgress | _RichProgress]:
    """Yield an object with ``advance(n, extra=0.0)``.

    ``extra`` is a second counter (for instance files alongside subjects) whose rate is shown too.
    """
    if not sys.stderr.isatty():
        yield _LogProgress(description, total, unit, extra_unit=extra_unit)
        return
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn,
                               TextColumn, TimeElapsedColumn, TimeRemainingColumn)

    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TaskProgressColumn(), _RateColumn(unit)]
    if extra_unit:
        columns.append(_RateColumn(extra_unit, field="extra"))
    columns += [TimeElapsedColumn(), TimeRemainingColumn()]
    # Under the quiet console of a multi-stage run (hpc_seg details above INFO, see
    # logs.quiet_console) a finished bar disappears: the stage's one "done" line replaces it.
    transient = logging.getLogger("hpc_seg").getEffectiveLevel() > logging.INFO
    with Progress(*columns, transient=transient) as progress:
        task_id = progress.add_task(description, total=total, extra=0.0)
        yield _RichProgress(progress, task_id)
