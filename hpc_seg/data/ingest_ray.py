"""Ray Data ingest engine (for many cores / nodes; on a few cores the local pool is faster).

Pipeline (see ``notes/ray_optuna.md`` §3 for why):

1. ``from_items`` of (file, patient key) rows, no bytes;
2. ``map_batches``: header-only reads (``stop_before_pixels``), each file in its own try/except,
   so one corrupt file can never fail or drop a block;
3. ``groupby(patient key, num_partitions=small)``: the shuffle moves only tiny header rows;
4. ``map_groups``: the shared per-patient code (:func:`run_chunk`) reads pixels with a per-file
   guard, curates, writes the patient's volumes shard with an atomic rename, and returns the
   small tables as Arrow IPC bytes for the driver to commit.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from hpc_seg.data.dicom_read import read_frame
from hpc_seg.data.dsb2_layout import PatientFolder
from hpc_seg.data.ingest_patient import (ChunkOptions, ChunkResult, run_chunk, tables_from_bytes,
                                         tables_to_bytes)
from hpc_seg.errors import LaunchError

log = logging.getLogger(__name__)


def read_headers(batch: pd.DataFrame, src: str) -> pd.DataFrame:
    """Batch UDF: header fields of each file; a bad file gives a row with its reason."""
    series, numbers, reasons = [], [], []
    for rel in batch["file"]:
        frame, skip, _ = read_frame(Path(src) / rel, rel, with_metadata=False, with_pixels=False)
        series.append(frame.series_uid if frame else "")
        numbers.append(frame.series_number if frame else -1)
        reasons.append(skip.reason if skip else "")
    return batch.assign(series_uid=series, series_number=numbers, header_problem=reasons)


def curate_group(group: pd.DataFrame, opts: ChunkOptions) -> pd.DataFrame:
    """Group UDF: one patient's header rows → curated, written, small tables back."""
    key = str(group["patient_key"].iloc[0])
    split, pid = key.split("/", 1)
    # Header order (series, then file name) gives a stable, file-system independent order.
    group = group.sort_values(["series_number", "file"])
    patient = PatientFolder(pid, split, tuple(group["file"]), 0)
    result = run_chunk(opts, [patient], tag=f"p{pid}-{split}")
    return pd.DataFrame([{
        "patient_key": key,
        "counts": json.dumps({"n_files": result.n_files, "n_used": result.n_used,
                              "n_stacks": result.n_stacks, "skipped": dict(result.skipped),
                              "volume_shards": result.volume_shards}),
        **{f"table_{name}": blob for name, blob in tables_to_bytes(result.tables).items()},
    }])


def _result_from_row(row: dict) -> ChunkResult:
    counts = json.loads(row["counts"])
    tables = tables_from_bytes({k[len("table_"):]: v for k, v in row.items() if k.startswith("table_")})
    return ChunkResult(tables, counts["volume_shards"], 1, counts["n_files"], counts["n_used"],
                       Counter(counts["skipped"]), counts["n_stacks"])


def run_ray(opts: ChunkOptions, patients: list[PatientFolder], config,
            on_result: Callable[[ChunkResult], None]) -> None:
    """Run the pipeline on a Ray cluster (``config.ray_address``) or a local Ray instance.

    A Ray instance already initialised in this process is reused (the benchmark does this to
    leave cluster start-up out of the timing); one started here is shut down at the end.
    """
    import ray

    started = False
    if not ray.is_initialized():
        try:
            if config.ray_address:
                ray.init(address=config.ray_address, log_to_driver=False)
            else:
                ray.init(num_cpus=config.workers, include_dashboard=config.ray_dashboard,
                         log_to_driver=False)
        except Exception as exc:
            where = config.ray_address or "a local instance"
            raise LaunchError(f"Ray at {where}: cannot start or connect: {exc}") from None
        started = True
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False   # our own progress display counts patients and files
        with_files = [p for p in patients if p.files]
        for p in patients:
            if not p.files:   # nothing to read: log its issue without a Ray round trip
                on_result(run_chunk(opts, [p]))
        if not with_files:
            return
        cpus = int(ray.cluster_resources().get("CPU", 1))
        partitions = max(1, min(len(with_files), cpus))
        items = [{"file": f, "patient_key": f"{p.split}/{p.pid}"} for p in with_files for f in p.files]
        ds = ray.data.from_items(items, override_num_blocks=max(1, min(len(items) // 256 + 1, 4 * cpus)))
        ds = ds.map_batches(read_headers, fn_kwargs={"src": str(opts.src)}, batch_size=256,
                            batch_format="pandas")
        ds = ds.groupby("patient_key", num_partitions=partitions).map_groups(
            curate_group, fn_kwargs={"opts": opts}, batch_format="pandas")
        for row in ds.iter_rows():
            on_result(_result_from_row(row))
    finally:
        if started:
            ray.shutdown()
