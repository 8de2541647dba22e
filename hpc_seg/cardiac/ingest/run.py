"""Ingest stage API: DSB2 DICOM cine → curated 4D stacks as Parquet tables.

``ingest(src, out, IngestConfig(...)) -> IngestSummary``. Two engines run the same per-patient
code (:mod:`hpc_seg.cardiac.ingest.patient`): a local process pool (default) and Ray Data
(``engine="ray"``, or ``"auto"`` when a Ray address is given). See :mod:`hpc_seg.cardiac.ingest.tables`
for the output tables and :mod:`hpc_seg.cardiac.ingest.commit` for how a re-run skips finished
patients.
"""

from __future__ import annotations

import json
import logging
import os
import time
from contextlib import nullcontext
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from hpc_seg.cardiac.ingest.layout import PatientFolder, discover_cohort
from hpc_seg.cardiac.ingest.commit import Committer
from hpc_seg.cardiac.ingest.config import IngestConfig
from hpc_seg.cardiac.ingest.fingerprint import patient_fingerprint
from hpc_seg.cardiac.ingest.patient import ChunkOptions, ChunkResult
from hpc_seg.cardiac.ingest.series_select import SeriesChoice
from hpc_seg.cardiac.truth import read_truth_csv
from hpc_seg.storage.shards import atomic_write_bytes
from hpc_seg.progress import progress_bar
from hpc_seg.runtime.threads import default_workers

log = logging.getLogger(__name__)

#: which node curated which patient (Ray engine), next to the tables
PLACEMENT_FILE = "placement.json"
#: inputs above this size are worth a multi-node Ray cluster when one is reachable
RAY_AUTO_MIN_BYTES = 20e9


@dataclass
class IngestSummary:
    """Counts and output paths of one ingest run (this run plus earlier finished patients)."""

    engine: str
    engine_reason: str
    out: Path
    tables: dict[str, Path]
    patients: int = 0
    patients_skipped_done: int = 0
    stacks: int = 0
    files: int = 0
    files_used: int = 0
    files_skipped: int = 0
    skipped_by_reason: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    input_bytes: int = 0
    cpu_seconds: float = 0.0
    """CPU time of the workers that curated this run's patients (summed over processes/nodes)."""
    placement: dict[str, dict[str, str]] = field(default_factory=dict)
    """Ray engine: patient key (``split/pid``) → the node that curated it."""

    def add(self, r: ChunkResult) -> None:
        """Count a finished chunk in."""
        self.cpu_seconds += r.cpu_s
        if r.node:
            self.placement[r.node["patient_key"]] = {k: v for k, v in r.node.items()
                                                     if k != "patient_key"}
        self.patients += r.n_patients
        self.stacks += r.n_stacks
        self.files += r.n_files
        self.files_used += r.n_used
        self.files_skipped += sum(r.skipped.values())
        counts = Counter(self.skipped_by_reason)
        counts.update(r.skipped)
        self.skipped_by_reason = dict(counts)


def choose_engine(config: IngestConfig, input_bytes: int) -> tuple[str, str]:
    """(engine, why). ``auto`` picks Ray only where it pays: an explicit Ray address, or a
    large input while a Ray cluster is advertised (RAY_ADDRESS); otherwise the local pool,
    because on a few cores Ray Data's fixed and shuffle overheads outweigh its gains."""
    if config.engine != "auto":
        return config.engine, "requested"
    if config.ray_address:
        return "ray", f"a Ray address was given ({config.ray_address})"
    if input_bytes >= RAY_AUTO_MIN_BYTES and os.environ.get("RAY_ADDRESS"):
        return "ray", (f"input is {input_bytes / 1e9:.1f} GB and RAY_ADDRESS="
                       f"{os.environ['RAY_ADDRESS']} names a cluster")
    return "local", (f"input is {input_bytes / 1e9:.2f} GB and no Ray address was given; "
                     f"a local process pool has less overhead")


def ingest(src: Path, out: Path, config: IngestConfig | None = None) -> IngestSummary:
    """Curate every patient under ``src`` into Parquet tables under ``out``.

    Raises InputError for unusable input (missing/empty folder, no short-axis series, bad truth
    CSV) and OutputError when ``out`` cannot be written. Patients finished by an earlier run are
    skipped.
    """
    config = config or IngestConfig()
    src, out = Path(src), Path(out)
    t0 = time.perf_counter()
    patients = discover_cohort(src)
    truth_path = config.truth_csv or (src / "truth.csv" if (src / "truth.csv").is_file() else None)
    truth = read_truth_csv(truth_path) if truth_path else None
    committer = Committer(out)
    choice = SeriesChoice(tuple(config.series), tuple(config.exclude_series))
    if choice:
        log.info("ingest: series chosen by the user: %s",
                 "; ".join(f"{k}: {', '.join(v)}" for k, v in choice.settings().items() if v))
    try:
        settings = {"gap_rule": config.gap_rule, "max_decoded_mb": config.max_decoded_mb,
                    **choice.settings()}
        fingerprints = {p.pid: patient_fingerprint(src, p, (truth or {}).get(p.pid), settings)
                        for p in patients}
        committer.expect(fingerprints)
        _forget_changed(committer, fingerprints)
        done = set(committer.finished_patients())
        todo = [p for p in patients if p.pid not in done]
        input_bytes = sum(p.nbytes for p in todo)
        engine, why = choose_engine(config, input_bytes)
        log.info("ingest %s → %s: %d patients (%d already finished), %d files, %.1f MB; "
                 "engine %s: %s", src, out, len(patients), len(patients) - len(todo),
                 sum(len(p.files) for p in todo), input_bytes / 1e6, engine, why)
        summary = IngestSummary(engine=engine, engine_reason=why, out=out,
                                tables=committer.table_dirs(),
                                patients_skipped_done=len(done & set(fingerprints)),
                                input_bytes=input_bytes)
        opts = ChunkOptions(src=src, out=out, shard_mb=config.shard_mb, gap_rule=config.gap_rule,
                            series=choice,
                            compression=config.compression,
                            compression_level=config.compression_level,
                            pixel_compression=config.pixel_compression, truth=truth,
                            max_decoded_mb=config.max_decoded_mb)
        if todo:
            try:
                _run_engine(engine, opts, todo, config, committer, summary)
            finally:
                if summary.placement:
                    _record_placement(out, summary.placement)
    finally:
        committer.close()
    summary.seconds = time.perf_counter() - t0
    return summary


def _forget_changed(committer: Committer, fingerprints: dict[str, str]) -> None:
    """Un-finish (and so re-do) patients whose inputs or curation changed since they were
    ingested, and remove patients that are no longer in SRC (their rows would otherwise mix
    another cohort into this output)."""
    done = committer.finished_patients()
    changed = sorted(p for p, fp in done.items() if p in fingerprints and fp != fingerprints[p])
    gone = sorted(p for p in done if p not in fingerprints)
    if changed:
        log.info("ingest: %d patient(s) changed since they were ingested (inputs or curation); "
                 "re-doing them: %s", len(changed), ", ".join(changed[:20]))
    if gone:
        log.warning("ingest: %d patient(s) in the output are no longer in SRC; removing their "
                    "rows: %s", len(gone), ", ".join(gone[:20]))
    committer.forget(set(changed) | set(gone))


def _record_placement(out: Path, placement: dict[str, dict[str, str]]) -> None:
    """Merge this run's patient → node map into ``<out>/placement.json`` (a re-run that finishes
    the rest adds to it). Not a table: the curated output is the same whichever node worked."""
    path = out / PLACEMENT_FILE
    try:
        old = json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, ValueError):
        old = {}
    atomic_write_bytes(json.dumps({**old, **placement}, indent=1, sort_keys=True).encode(), path)


class _NoProgress:
    def advance(self, n: int = 1, extra: float = 0.0) -> None:
        pass


def _run_engine(engine: str, opts: ChunkOptions, todo: list[PatientFolder], config: IngestConfig,
                committer: Committer, summary: IngestSummary) -> None:
    n_files = sum(len(p.files) for p in todo)
    bar_cm = progress_bar("ingest", total=len(todo), unit="subjects", extra_unit="files") \
        if config.progress else nullcontext(_NoProgress())
    with bar_cm as bar:
        def on_result(result: ChunkResult) -> None:
            committer.add(result)
            summary.add(result)
            bar.advance(result.n_patients, extra=result.n_files)

        try:
            if engine == "ray":
                from hpc_seg.cardiac.ingest.engine_ray import run_ray

                run_ray(opts, todo, config, on_result)
            else:
                from hpc_seg.cardiac.ingest.engine_local import run_local

                run_local(opts, todo, default_workers(config.workers), on_result)
        finally:
            # Whatever happened (error, Ctrl-C), finished patients are committed and kept.
            committer.commit()
    log.info("ingest: %d patients, %d stacks, %d of %d files used", summary.patients,
             summary.stacks, summary.files_used, n_files)
