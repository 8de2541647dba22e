"""Every use of submitit's private API, in one place, pinned to the tested release.

submitit's public API cannot render an sbatch script without submitting it, rebuild a job object
from a stored job id, or shorten how long ``results()`` waits for a result file that will never
come. hpc-seg needs all three (golden scripts, ``hpc-seg jobs`` on old runs, gathering jobs SLURM
already ended), so they are wrapped here and ``tests/launch/test_submitit_compat.py`` fails when a
submitit upgrade changes them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: the submitit release these wrappers were written against (pyproject pins it)
TESTED_VERSION = "1.5.4"

#: the module a submitted job runs (``python -m submitit.core._submit FOLDER``)
SUBMIT_MODULE = "submitit.core._submit"


def sbatch_string(command: str, folder: str | Path, **params: Any) -> str:
    """The sbatch script submitit would write for ``params`` (its private renderer)."""
    from submitit.slurm.slurm import _make_sbatch_string

    return _make_sbatch_string(command=command, folder=folder, **params)


def job_from_id(executor: str, folder: str | Path, job_id: str) -> Any:
    """A submitit job object for a job submitted earlier (``executor``: ``slurm`` or ``local``)."""
    from submitit.local.local import LocalJob
    from submitit.slurm.slurm import SlurmJob

    job_cls = SlurmJob if executor == "slurm" else LocalJob
    return job_cls(folder=Path(folder), job_id=job_id)


def set_results_timeout(job: Any, seconds: float) -> None:
    """How long ``job.results()`` waits for a missing result file (submitit's default is 15 s)."""
    job._results_timeout_s = seconds


def load_pickle(path: str | Path) -> Any:
    """Read one of submitit's pickles (result or submission files)."""
    from submitit.core.utils import pickle_load

    return pickle_load(Path(path))
