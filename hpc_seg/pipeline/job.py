"""Load a job definition and run its stages (the API behind ``hpc-seg run``)."""

from __future__ import annotations

import difflib
import logging
from dataclasses import dataclass
from pathlib import Path

from hpc_seg.config import from_dict, load_toml
from hpc_seg.errors import ConfigError
from hpc_seg.pipeline.registry import STAGES, TABLES
from hpc_seg.pipeline.runner import StagePlan, run_stages
from hpc_seg.storage.names import child
from hpc_seg.stage import Context, PlannedResult, StagePlanned, StageFn, is_plannable

log = logging.getLogger(__name__)


@dataclass(kw_only=True)
class JobSection:
    """The ``[job]`` table: which stages run, in which order, and where outputs go."""

    name: str
    stages: list[str]
    out: str | None = None
    description: str = ""
    seed: int = 0

    def __post_init__(self) -> None:
        unknown = [s for s in self.stages if s not in STAGES]
        if unknown:
            raise ConfigError(f"unknown stage(s) {unknown}; valid stages are {sorted(STAGES)}")
        if len(set(self.stages)) != len(self.stages):
            raise ConfigError(f"stages must not repeat, but got {self.stages}")


def run_job(job_file: str | Path, *, out: str | Path | None = None, force: list[str] = (),
            only: list[str] = (), list_only: bool = False) -> int:
    """Run ``job_file``; returns a process exit code."""
    job_file = Path(job_file)
    tables = load_toml(job_file)
    job = from_dict(JobSection, tables.get("job", {}), f"{job_file}: [job]")
    for name in [*force, *only]:
        if name not in job.stages:
            raise ConfigError(f"{job_file}: stage {name!r} is not in this job; its stages are "
                              f"{job.stages}")
    if list_only:
        for i, name in enumerate(job.stages, 1):
            print(f"{i:2d}. {name:22s} {STAGES[name].__doc__.strip().splitlines()[0]}")
        return 0
    root = Path(out or job.out or child(Path("runs"), job.name))
    selected = [(n, STAGES[n]) for n in job.stages]
    if only:
        # Stages after the last one named are left alone: neither run nor loaded (a fresh run
        # folder has no records for them, and they do not feed the named ones).
        last = max(job.stages.index(n) for n in only)
        if selected[last + 1:]:
            log.info("--only: stages after %s are left alone: %s", job.stages[last],
                     ", ".join(job.stages[last + 1:]))
        selected = selected[:last + 1]
    plans = plan_job(job_file, tables, root, selected)
    ctx = Context(job_file=job_file, out=root, tables=tables)
    if only:
        # Load earlier results from their records; run only the named stages.
        keep = set(only)
        selected = [(n, fn if n in keep else _load_only(n)) for n, fn in selected]
    log.info("job %s: %d stages -> %s", job.name, len(selected), root)
    run_stages(selected, ctx, force=frozenset(force) | frozenset(only), plans=plans)
    _close(job, root)
    return 0


def plan_job(job_file: Path, tables: dict, root: Path, stages: list[tuple[str, StageFn]],
             ) -> dict[str, StagePlan]:
    """Check the whole job before its first stage runs; returns what each stage reads.

    Every table must be one the job's stages know (a misspelt ``[ingset]`` is an error listing
    the valid ones), and every plannable stage is run up to its :meth:`~Context.begin` with the
    earlier stages' results as placeholders: wrong types, unknown keys and a missing earlier
    stage ("needs stage X") fail here, not after the stages before have run for an hour.
    """
    ctx = Context(job_file=job_file, out=root, tables=tables, planning=True)
    plans: dict[str, StagePlan] = {}
    read: set[str] = set()
    try:
        _plan_stages(ctx, stages, plans, read)
    except ConfigError:
        # A misspelt table is the likelier cause of what a stage then misses ("needs stage
        # synth_cine" for an [ingset] that should have given ingest its src): name it first.
        _check_tables(job_file, tables, read)
        raise
    _check_tables(job_file, tables, read)
    return plans


def _check_tables(job_file: Path, tables: dict, read: set[str]) -> None:
    unknown = sorted(set(tables) - TABLES - read)
    if unknown:
        hints = []
        for t in unknown:
            close = difflib.get_close_matches(t, sorted(TABLES), n=1)
            hints.append(f"[{t}]" + (f" (did you mean [{close[0]}]?)" if close else ""))
        raise ConfigError(f"{job_file}: unknown table(s) {', '.join(hints)}; valid tables are "
                          f"{sorted(TABLES)}")


def _plan_stages(ctx: Context, stages: list[tuple[str, StageFn]], plans: dict[str, StagePlan],
                 read: set[str]) -> None:
    for name, fn in stages:
        ctx.start_stage()
        if is_plannable(fn):
            try:
                fn(ctx)
                raise ConfigError(f"stage {name!r} did not call ctx.begin(); it cannot be "
                                  "checked up front")   # a programming error, caught in tests
            except StagePlanned:
                pass
            plans[name] = StagePlan(tables=frozenset(ctx.read_tables | {name}),
                                    after=frozenset(ctx.used_stages()))
        else:   # not checkable: assume it reads its own table and depends on every stage before
            plans[name] = StagePlan(tables=frozenset({name}), after=frozenset(ctx.results))
        read |= plans[name].tables
        ctx.results[name] = PlannedResult(name)


def _load_only(name: str):
    def fn(ctx: Context) -> dict:
        raise ConfigError(f"stage {name!r} has not finished, or its config or inputs changed "
                          "since; run the job without --only first")
    return fn


def _close(job: JobSection, root: Path) -> None:
    """Write the report and print its headlines (one line each), then where the report is."""
    from hpc_seg.pipeline.registry import FINDINGS
    from hpc_seg.report.collect import stage_records
    from hpc_seg.report.console import closing_lines
    from hpc_seg.report.findings import collect_findings
    from hpc_seg.report.page import build_report

    findings = collect_findings(root, FINDINGS)
    page = build_report(root, findings=findings, title=job.name)
    for line in closing_lines(findings, stage_records(root), job.name, root):
        print(line)
    print(f"report: {page}")   # last line: where to look next
