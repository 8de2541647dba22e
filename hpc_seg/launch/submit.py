"""Submitting arrays and multi-rank jobs, waiting gently, gathering outcomes, resubmitting failures.

- :func:`submit_array`: one array task per spec, throttled to ``array_parallelism`` (``%N``), split
  into several arrays when longer than the cluster's MaxArraySize.
- :func:`gather`: waits for every task and returns one :class:`TaskOutcome` each, in spec order;
  a failed task carries its remote traceback and never stops the others.
- :func:`resubmit_failed`: re-runs only the tasks whose latest attempt failed (from their submitted
  pickles, so it also works from a fresh process: ``hpc-seg jobs resubmit``).
- :func:`submit_ddp` / :func:`wait_job`: one ``nodes x tasks_per_node`` job whose ranks all call
  the same function; it requeues itself when pre-empted (see :class:`~hpc_seg.launch.tasks.Resumable`).

Waiting never hangs on a job that SLURM ended without a result (cancelled, killed, timed out):
the state comes from the shared cached ``sacct`` (:mod:`hpc_seg.launch.status`), and the error
names the state and shows the job's stderr tail.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpc_seg.config import from_dict, to_dict
from hpc_seg.storage.shards import atomic_write_bytes
from hpc_seg.errors import LaunchError
from hpc_seg.launch.config import LaunchConfig
from hpc_seg.launch.executor import make_executor
from hpc_seg.launch.lineage import Lineage, now_iso
from hpc_seg.launch.status import SACCT, base_id, fail_if_never_starts
from hpc_seg.launch.submitit_compat import job_from_id, load_pickle, set_results_timeout
from hpc_seg.launch.tasks import Resumable, TrackedCall

log = logging.getLogger(__name__)


@dataclass
class TaskOutcome:
    """What one task gave back."""

    index: int
    job_id: str
    state: str
    ok: bool
    result: Any = None
    error: str | None = None
    """The remote traceback (FAILED) or SLURM's reason and the stderr tail (CANCELLED, TIMEOUT...)."""

    @property
    def error_line(self) -> str:
        """The last line of :attr:`error` (a traceback's exception), for one-line messages."""
        lines = [ln.strip() for ln in (self.error or "").strip().splitlines() if ln.strip()]
        return lines[-1] if lines else ""


@dataclass
class ArrayRun:
    """The tasks of one :func:`submit_array` call (latest attempt of each spec index)."""

    run_dir: Path
    name: str
    jobs: list[Any]
    attempts: list[int] = field(default_factory=list)

    @property
    def job_ids(self) -> list[str]:
        return [j.job_id for j in self.jobs]

    @classmethod
    def load(cls, run_dir: str | Path, name: str | None = None) -> "ArrayRun":
        """Re-open the latest attempt of every task of array ``name`` from the run's lineage."""
        rows = Lineage.open_existing(run_dir).rows()
        names = sorted({r["name"] for r in rows})
        name = name or (names[0] if len(names) == 1 else None)
        if name is None or name not in names:
            raise LaunchError(f"{run_dir}: name one of the runs {names} (got {name!r})")
        latest: dict[int, dict[str, Any]] = {}
        for r in rows:
            if r["name"] == name and (r["task_index"] not in latest
                                      or r["attempt"] >= latest[r["task_index"]]["attempt"]):
                latest[r["task_index"]] = r
        ordered = [latest[i] for i in sorted(latest)]
        return cls(Path(run_dir), name, [_job_from_row(r) for r in ordered],
                   [r["attempt"] for r in ordered])


def _job_from_row(row: dict[str, Any]) -> Any:
    return job_from_id(row["executor"], Path(row["stdout"]).parent, row["job_id"])


@functools.lru_cache(maxsize=1)
def max_array_size() -> int:
    """The cluster's MaxArraySize (array indices must be below it); 1001 if unknown."""
    try:
        out = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True,
                             timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return 1001
    m = re.search(r"^MaxArraySize\s*=\s*(\d+)", out, re.M)
    return int(m.group(1)) if m else 1001


def _chunks(n: int, size: int) -> list[range]:
    return [range(i, min(n, i + size)) for i in range(0, n, size)]


def _save_launch(run_dir: Path, name: str, cfg: LaunchConfig) -> None:
    atomic_write_bytes(json.dumps(to_dict(cfg), indent=2).encode(), run_dir / "launch" / f"{name}.json")


def _load_launch(run_dir: Path, name: str) -> LaunchConfig:
    path = run_dir / "launch" / f"{name}.json"
    try:
        return from_dict(LaunchConfig, json.loads(path.read_text()), str(path))
    except OSError as exc:
        raise LaunchError(f"{path}: cannot read the launch config of {name!r} ({exc})") from None


def _rows(jobs: Sequence[Any], indices: Sequence[int], attempt: int, name: str, executor: str,
          config_hash: str | None, inputs: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    now = now_iso()
    rows = []
    for job, index in zip(jobs, indices):
        array_index = int(job.job_id.split("_")[1]) if "_" in job.job_id else None
        rows.append({"job_id": job.job_id, "array_job_id": base_id(job.job_id),
                     "array_index": array_index, "task_index": index, "attempt": attempt,
                     "name": name, "config_hash": config_hash, "executor": executor,
                     "submitted_at": now, "state": "SUBMITTED", "restarts": 0,
                     "stdout": str(job.paths.stdout), "stderr": str(job.paths.stderr),
                     "inputs": json.dumps(inputs, sort_keys=True) if inputs else None})
    return rows


def _submit_calls(cfg: LaunchConfig, run_dir: Path, calls: list[Any], indices: list[int],
                  attempt: int, name: str, config_hash: str | None) -> list[Any]:
    ex = make_executor(cfg, run_dir / "submitit")
    limit = max_array_size() if ex.cluster == "slurm" else len(calls)
    jobs: list[Any] = []
    for part in _chunks(len(calls), max(1, limit)):
        jobs += ex.submit_array([calls[i] for i in part])
    if len(jobs) != len(calls):
        raise LaunchError(f"submitted {len(calls)} tasks but got {len(jobs)} jobs back")
    Lineage(run_dir).add(_rows(jobs, indices, attempt, name, ex.cluster, config_hash))
    SACCT.poke()
    log.info("%s: submitted %d task(s) as %s (%s executor, at most %d at once)", name, len(jobs),
             ", ".join(sorted({base_id(j.job_id) for j in jobs})), ex.cluster, cfg.array_parallelism)
    return jobs


def submit_array(fn: Callable[[Any], Any], specs: Sequence[Any], cfg: LaunchConfig,
                 run_dir: str | Path, *, name: str = "array",
                 config_hash: str | None = None, resumable: bool = False) -> ArrayRun:
    """Run ``fn(spec)`` for every spec as array tasks; lineage and logs go under ``run_dir``.

    ``resumable``: each task requeues itself when pre-empted or timed out
    (:class:`~hpc_seg.launch.tasks.Resumable`); ``fn`` must then resume from its own checkpoints.
    """
    specs = list(specs)
    if not specs:
        raise LaunchError(f"{name}: no task specs to submit")
    run_dir = Path(run_dir)
    _save_launch(run_dir, name, cfg)
    call = Resumable if resumable else TrackedCall
    calls = [call(fn, (spec,), run_dir / "lineage") for spec in specs]
    jobs = _submit_calls(cfg, run_dir, calls, list(range(len(specs))), 0, name, config_hash)
    return ArrayRun(run_dir, name, jobs, [0] * len(jobs))


def _task_pickles(job: Any) -> list[Path]:
    return [job.task(i).paths.result_pickle for i in range(job.num_tasks)] if job.num_tasks > 1 \
        else [job.paths.result_pickle]


def _is_slurm(job: Any) -> bool:
    return type(job).__name__ == "SlurmJob"


def _any_error(pickles: list[Path]) -> bool:
    try:
        return any(load_pickle(p)[0] == "error" for p in pickles)
    except Exception:  # noqa: BLE001 - half-written or being replaced: look again next round
        return True


def _wait(jobs: Sequence[Any], timeout_s: float | None) -> None:
    """Until every job has a result file or ended in SLURM: file checks are cheap, sacct cached."""
    pending = list(jobs)
    start, nap = time.monotonic(), 0.05
    folders = {j.paths.folder for j in jobs}
    while pending:
        for folder in folders:  # refresh NFS attribute caches, as submitit does
            try:
                folder.chmod(folder.stat().st_mode)
            except OSError:
                pass
        slurm_ids = [j.job_id for j in pending if _is_slurm(j)]
        infos = SACCT.infos(slurm_ids)
        fail_if_never_starts(slurm_ids, infos)
        still = []
        for job in pending:
            info = infos.get(job.job_id) if _is_slurm(job) else None
            ended = info is not None and info.terminal
            pickles = _task_pickles(job)
            if all(p.exists() for p in pickles):
                # An error result is final only once SLURM agrees: a pre-empted task can leave one
                # behind (its `scontrol requeue` gets SIGTERM) and then run again.
                if not _is_slurm(job) or ended or not _any_error(pickles):
                    continue
            elif ended or (not _is_slurm(job) and job.done()):
                continue
            still.append(job)
        nap = 0.05 if len(still) < len(pending) else min(1.0, nap * 1.15)
        pending = still
        if pending and timeout_s is not None and time.monotonic() - start > timeout_s:
            raise LaunchError(f"{len(pending)} job(s) not finished after {timeout_s:.0f}s: "
                              f"{', '.join(j.job_id for j in pending[:10])}")
        if pending:
            time.sleep(nap)


def outcome(index: int, job: Any) -> TaskOutcome:
    """The outcome of a finished job (never raises for the job's own failure)."""
    from submitit.core.utils import FailedJobError, UncompletedJobError

    set_results_timeout(job, 3)  # SLURM already said it ended: do not wait 15 s for a missing file
    try:
        results = job.results()
    except FailedJobError as exc:
        return TaskOutcome(index, job.job_id, "FAILED", False, error=str(exc))
    except UncompletedJobError as exc:
        state = "UNKNOWN"
        if _is_slurm(job):
            info = SACCT.infos([job.job_id], force=True).get(job.job_id)
            state = info.state if info else state
        return TaskOutcome(index, job.job_id, state, False, error=str(exc))
    return TaskOutcome(index, job.job_id, "COMPLETED", True,
                       result=results[0] if len(results) == 1 else results)


def gather(run: ArrayRun, *, timeout_s: float | None = None) -> list[TaskOutcome]:
    """Wait for all tasks of ``run``; one outcome per spec, in order. Updates the lineage."""
    _wait(run.jobs, timeout_s)
    outcomes = [outcome(i, job) for i, job in enumerate(run.jobs)]
    Lineage(run.run_dir).refresh(force=True)
    failed = [o for o in outcomes if not o.ok]
    if failed:
        log.warning("%s: %d of %d task(s) failed: %s", run.name, len(failed), len(outcomes),
                    ", ".join(f"{o.index} ({o.job_id} {o.state})" for o in failed))
    return outcomes


def resubmit_failed(run: ArrayRun, outcomes: Sequence[TaskOutcome] | None = None) -> ArrayRun:
    """Submit again only the tasks whose latest attempt did not complete; returns the updated run."""
    if outcomes is None:
        rows = {r["job_id"]: r for r in Lineage(run.run_dir).refresh(force=True)}
        bad = [i for i, j in enumerate(run.jobs) if rows.get(j.job_id, {}).get("state") != "COMPLETED"]
    else:
        bad = [o.index for o in outcomes if not o.ok]
    if not bad:
        log.info("%s: nothing to resubmit, every task completed", run.name)
        return run
    calls = []
    for i in bad:
        try:
            calls.append(run.jobs[i].submission().function)
        except (OSError, EOFError) as exc:
            raise LaunchError(f"{run.jobs[i].paths.submitted_pickle}: cannot reload task {i} "
                              f"({exc})") from None
        except (ImportError, AttributeError) as exc:
            # The pickle names the function by module path; runs made before the study-folder
            # layout point at modules that no longer exist (hpc_seg.data.*, hpc_seg.train.*...).
            raise LaunchError(f"{run.jobs[i].paths.submitted_pickle}: task {i} was pickled by an "
                              f"older hpc-seg whose code has moved ({exc}); submit the stage again "
                              f"with the current command instead of resubmitting it") from None
    attempt = max(run.attempts[i] for i in bad) + 1 if run.attempts else 1
    cfg = _load_launch(run.run_dir, run.name)
    rows = Lineage(run.run_dir).rows()
    hashes = {r["job_id"]: r["config_hash"] for r in rows}
    new_jobs = _submit_calls(cfg, run.run_dir, calls, bad, attempt, run.name,
                             hashes.get(run.jobs[bad[0]].job_id))
    jobs, attempts = list(run.jobs), list(run.attempts or [0] * len(run.jobs))
    for i, job in zip(bad, new_jobs):
        jobs[i], attempts[i] = job, attempt
    return ArrayRun(run.run_dir, run.name, jobs, attempts)


def submit_ddp(fn: Callable[..., Any], args: tuple, cfg: LaunchConfig, run_dir: str | Path, *,
               name: str = "ddp", config_hash: str | None = None,
               inputs: dict[str, Any] | None = None) -> Any:
    """One job of ``nodes x tasks_per_node`` ranks, each calling ``fn(*args)``; requeues on pre-emption.

    Inside ``fn`` call :func:`hpc_seg.launch.ddp.init_distributed` to join the process group.
    ``inputs`` (e.g. the SHA-256 of the checkpoints the job starts from) go into its lineage row.
    """
    run_dir = Path(run_dir)
    _save_launch(run_dir, name, cfg)
    ex = make_executor(cfg, run_dir / "submitit")
    job = ex.submit(Resumable(fn, args, run_dir / "lineage"))
    Lineage(run_dir).add(_rows([job], [0], 0, name, ex.cluster, config_hash, inputs))
    SACCT.poke()
    log.info("%s: submitted job %s (%d node(s) x %d task(s), %s executor)", name, job.job_id,
             cfg.nodes, cfg.tasks_per_node, ex.cluster)
    return job


def wait_job(job: Any, *, timeout_s: float | None = None, run_dir: str | Path | None = None) -> list[Any]:
    """Per-rank results of ``job``; :class:`LaunchError` (state + traceback) if it did not complete."""
    _wait([job], timeout_s)
    out = outcome(0, job)
    if run_dir is not None:
        Lineage(run_dir).refresh(force=True)
    if not out.ok:
        # one line: the traceback stays in the job's log, where `hpc-seg jobs logs` shows it
        where = f"hpc-seg jobs logs {run_dir} {job.job_id} --err" if run_dir else \
            f"the job's stderr ({job.paths.stderr})"
        raise LaunchError(f"job {job.job_id} ended {out.state} without a result: "
                          f"{out.error_line or 'no error message'}; the whole log: {where}")
    return out.result if job.num_tasks > 1 else [out.result]
