"""Ray Data ingest engine (for many cores / nodes; on a few cores the local pool is faster).

The DSB2 layout already groups files by patient (one folder each), so the pipeline needs no
header pass and no shuffle (when the archive is already one directory per series, a groupby
only costs; the header pass + ``groupby`` was measured to
double the wall time on 2 cores):

1. ``from_items`` with one row per patient (its relative file list, no bytes), largest first
   and one block per patient so Ray spreads them over the CPUs;
2. ``map_batches`` (one patient per call): the shared per-patient code (:func:`run_chunk`)
   reads every file with a per-file guard, curates, writes the patient's volumes shard with an
   atomic rename, and returns the small tables as Arrow IPC bytes for the driver to commit.

Both engines thus feed :func:`run_chunk` the same :class:`PatientFolder`, so their outputs are
the same by construction.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pandas as pd

from hpc_seg.cardiac.ingest.layout import PatientFolder
from hpc_seg.cardiac.ingest.patient import (ChunkOptions, ChunkResult, run_chunk, tables_from_bytes,
                                         tables_to_bytes)
from hpc_seg.runtime.ray_connect import check_shared_path, cluster_address, node_identity, ray_session
from hpc_seg.runtime.worker_memory import keep_freed_memory_once

log = logging.getLogger(__name__)


def curate_patients(batch: pd.DataFrame, opts: ChunkOptions) -> pd.DataFrame:
    """Batch UDF: each row one patient (key + JSON file list) → curated, written, small tables,
    and the node that did it (recorded in ``<out>/placement.json``)."""
    keep_freed_memory_once()
    node = node_identity()
    out = []
    for key, files in zip(batch["patient_key"], batch["files"]):
        split, pid = key.split("/", 1)
        patient = PatientFolder.from_json(pid, split, files)
        result = run_chunk(opts, [patient], tag=f"p{pid}-{split}")
        out.append({
            "patient_key": key,
            "counts": json.dumps({"n_files": result.n_files, "n_used": result.n_used,
                                  "n_stacks": result.n_stacks, "skipped": dict(result.skipped),
                                  "volume_shards": result.volume_shards,
                                  "cpu_s": result.cpu_s, "node": {"patient_key": key, **node}}),
            **{f"table_{name}": blob for name, blob in tables_to_bytes(result.tables).items()},
        })
    return pd.DataFrame(out)


@contextmanager
def _ingest_data_context() -> Iterator[None]:
    """Ray Data settings for this one-operator pipeline, restored afterwards (a library call
    must not change the settings of the user's other pipelines in the same driver).

    Operator resource reservation (Ray 2.60, ``DataContext.op_resource_reservation_enabled``)
    sets aside half of the CPUs per operator for fairness between operators, and hands the rest
    out only as its object-store estimates allow. With a single map operator that reservation
    protects nothing: measured on 2 CPUs, the second worker got its first patient after ~1-2 s
    and a 20-patient cohort took 4.5-5.1 s; without it both workers start at once (3.0-3.6 s).
    """
    import ray

    ctx = ray.data.DataContext.get_current()
    saved = ctx.enable_progress_bars, ctx.op_resource_reservation_enabled
    ctx.enable_progress_bars = False    # our own progress display counts patients and files
    ctx.op_resource_reservation_enabled = False
    try:
        yield
    finally:
        ctx.enable_progress_bars, ctx.op_resource_reservation_enabled = saved


def _import_ingest(batch: pd.DataFrame) -> pd.DataFrame:
    import time

    import hpc_seg.cardiac.ingest.patient  # noqa: F401  (the import is the point: it warms the worker)

    keep_freed_memory_once()
    time.sleep(0.2)   # hold this worker, so that the next warm-up task goes to another one
    return batch


def warm_up(workers: int) -> None:
    """Start what Ray starts lazily on a cluster's first pipeline: Ray Data's helper actors and
    ``workers`` task workers with the ingest modules imported.

    A benchmark calls this after ``ray.init`` to leave cluster start-up out of the timing (it costs
    ~4 s on 2 cores, more than the pipeline itself on a small cohort); ``hpc-seg ingest`` does not,
    since a new driver pays it either way.
    """
    import ray

    with _ingest_data_context():
        ds = ray.data.range(workers, override_num_blocks=workers)
        ds.map_batches(_import_ingest, batch_size=1, batch_format="pandas").materialize()


def _result_from_row(row: dict) -> ChunkResult:
    counts = json.loads(row["counts"])
    tables = tables_from_bytes({k[len("table_"):]: v for k, v in row.items() if k.startswith("table_")})
    return ChunkResult(tables, counts["volume_shards"], 1, counts["n_files"], counts["n_used"],
                       Counter(counts["skipped"]), counts["n_stacks"], cpu_s=counts["cpu_s"],
                       node=counts["node"])


def run_ray(opts: ChunkOptions, patients: list[PatientFolder], config,
            on_result: Callable[[ChunkResult], None]) -> None:
    """Run the pipeline on a Ray cluster or a local Ray instance.

    The cluster is ``config.ray_address``, else ``RAY_ADDRESS`` (set inside ``hpc-seg cluster
    submit``); without either a local instance is started. On a cluster the output folder must
    be shared by every node (each writes its patients' shards there): that is checked first.
    A Ray instance already initialised in this process is reused (the benchmark does this to
    leave cluster start-up out of the timing); one started here is shut down at the end.
    """
    import ray

    address = cluster_address(config.ray_address)
    with ray_session(address, num_cpus=config.workers, include_dashboard=config.ray_dashboard,
                     log_to_driver=False) as session:
        if session.joined_cluster or len(ray.nodes()) > 1:
            check_shared_path(opts.out, "the ingest output")
        with_files = [p for p in patients if p.files]
        for p in patients:
            if not p.files:   # nothing to read: log its issue without a Ray round trip
                on_result(run_chunk(opts, [p]))
        if not with_files:
            return
        ordered = sorted(with_files, key=lambda p: -p.nbytes)
        items = [{"patient_key": f"{p.split}/{p.pid}", "files": p.to_json()}
                 for p in ordered]
        with _ingest_data_context():
            ds = ray.data.from_items(items, override_num_blocks=len(items))
            ds = ds.map_batches(curate_patients, fn_kwargs={"opts": opts}, batch_size=1,
                                batch_format="pandas")
            for row in ds.iter_rows():
                on_result(_result_from_row(row))
