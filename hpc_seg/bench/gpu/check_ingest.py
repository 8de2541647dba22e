"""Check 5: ingest files/s with 1, 2, 4, 8 and 16 workers on the 20-patient cohort, for the local
and Ray engines, against the single-process pydicom floor: the scaling curve (goal: near-linear).

Every figure comes from ``hpc-seg bench ingest``'s :func:`hpc_seg.bench.ingest.run_bench` (one
round per worker count; the cohort is generated once and reused; Ray's start-up is excluded as
there). Efficiency is files/s at N workers over N times files/s at one worker.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from hpc_seg.bench.gpu.profile import GpuBenchProfile
from hpc_seg.bench.gpu.report import CheckOutcome


def scaling(rates: dict[int, float]) -> dict[int, dict[str, float]]:
    """Per worker count: files/s, speedup over the smallest count and efficiency."""
    base_w = min(rates)
    base = rates[base_w] / base_w
    return {w: {"files_per_s": r, "speedup": r / rates[base_w],
                "efficiency": r / (w * base) if base > 0 else float("nan")}
            for w, r in sorted(rates.items())}


def run_check(profile: GpuBenchProfile, workdir: Path) -> CheckOutcome:
    from hpc_seg.bench.ingest import BenchIngestConfig, prepare_cohort, run_bench

    c = profile.ingest
    src = prepare_cohort(BenchIngestConfig(workdir=workdir, patients=c.patients, seed=c.seed,
                                           max_matrix=c.max_matrix, engines=("floor",)))
    floor = run_bench(BenchIngestConfig(workdir=workdir / "floor", src=src, engines=("floor",),
                                        repeat=1))[0]
    rates: dict[str, dict[int, float]] = {e: {} for e in c.engines}
    rows: dict[str, dict[str, Any]] = {}
    for w in c.workers:
        out = workdir / f"workers-{w}"
        for row in run_bench(BenchIngestConfig(workdir=out, src=src, engines=tuple(c.engines),
                                               workers=w, repeat=1)):
            engine = row.name.split()[0]
            rates[engine][w] = row.files_per_s
            rows[f"{engine}_{w}"] = {"seconds": row.seconds, "files": row.files,
                                     "files_per_s": row.files_per_s,
                                     "x_floor": row.files_per_s / floor.files_per_s,
                                     "workers": row.extra.get("workers"), "note": row.note}
        for leftover in out.glob("out-*"):  # the Parquet output of each engine: GBs at 20 patients
            shutil.rmtree(leftover, ignore_errors=True)
    curves = {e: scaling(r) for e, r in rates.items()}
    worst = min((p["efficiency"] for curve in curves.values() for p in curve.values()),
                default=float("nan"))
    figures = {"patients": c.patients, "files": floor.files, "mb": floor.mb,
               "cpus": os.cpu_count(), "floor_files_per_s": floor.files_per_s,
               "curves": curves, "runs": rows, "worst_efficiency": worst}
    summary = f"floor {floor.files_per_s:.0f} files/s; " + "; ".join(
        f"{e}: " + ", ".join(f"{w}w {p['files_per_s']:.0f} ({p['efficiency']:.2f})"
                             for w, p in curve.items())
        for e, curve in curves.items())
    return CheckOutcome(figures=figures,
                        target=f"near-linear: efficiency >= {c.min_efficiency:g} at every worker "
                               f"count ({', '.join(map(str, c.workers))}), both engines",
                        met=worst >= c.min_efficiency, summary=summary)
