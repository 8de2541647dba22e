"""What a job stage is: a function of the shared :class:`Context` that returns its results.

This contract sits in the ground layer so that each study can define its stages
(``hpc_seg.cardiac.stages``, ``hpc_seg.hadnet.stages``) without importing the job runner that
chains them (``hpc_seg.pipeline``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpc_seg.errors import ConfigError


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
