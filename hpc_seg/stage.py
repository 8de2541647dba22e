"""What a job stage is: a function of the shared :class:`Context` that returns its results.

This contract sits in the ground layer so that each study can define its stages
(``hpc_seg.cardiac.stages``, ``hpc_seg.hadnet.stages``) without importing the job runner that
chains them (``hpc_seg.pipeline``).

A stage first validates its tables (typed configs, the results of earlier stages it needs) and
then calls :meth:`Context.begin` before doing any work. The job runner uses that split to check a
whole job before its first stage runs: it calls every stage with a *planning* context, in which
earlier stages' results are placeholders and ``begin()`` stops the stage (see
:func:`hpc_seg.pipeline.job.plan_job`). A stage that follows this contract is marked with
:func:`plannable`; others are only run for real.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpc_seg.errors import ConfigError


class StagePlanned(BaseException):
    """Raised by :meth:`Context.begin` while planning: the stage's checks passed. (A
    BaseException, so that a stage's own ``except Exception`` never swallows it.)"""


class _Results(dict):
    """Earlier stages' results that remember which stages were asked for (the inputs of a
    stage's fingerprint)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.used: set[str] = set()

    def __getitem__(self, key: str) -> Any:
        self.used.add(key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self.used.add(str(key))
        return super().__contains__(key)

    def get(self, key: str, default: Any = None) -> Any:
        self.used.add(key)
        return super().get(key, default)


class PlannedResult(dict):
    """A stage's result while planning: any key is a placeholder string."""

    def __init__(self, stage: str):
        super().__init__()
        self.stage = stage

    def __missing__(self, key: str) -> str:
        return f"<{self.stage}.{key}>"


@dataclass
class Context:
    """What stages share: the job's raw tables, its output root, and earlier stages' results."""

    job_file: Path
    out: Path
    tables: dict[str, Any]
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: True while the job is checked up front: :meth:`begin` then stops the stage
    planning: bool = False
    #: tables the current stage read (reset by the runner before each stage)
    read_tables: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.results = _Results(self.results)

    def table(self, name: str) -> dict[str, Any]:
        """The TOML table of a stage (empty when the job leaves every value at its default)."""
        self.read_tables.add(name)
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

    def used_stages(self) -> set[str]:
        """Earlier stages whose results the current stage asked for."""
        return set(self.results.used) & set(self.results)

    def start_stage(self) -> None:
        """Forget what the previous stage read (the runner calls this before each stage)."""
        self.read_tables = set()
        self.results.used = set()

    def begin(self) -> None:
        """End of the stage's checks; while planning, the stage stops here."""
        if self.planning:
            raise StagePlanned


StageFn = Callable[[Context], dict[str, Any]]


def plannable(fn: StageFn) -> StageFn:
    """Mark a stage that validates everything, then calls :meth:`Context.begin` before any work;
    only such stages are run while a job is checked up front."""
    fn.plannable = True  # type: ignore[attr-defined]
    return fn


def is_plannable(fn: StageFn) -> bool:
    return bool(getattr(fn, "plannable", False))
