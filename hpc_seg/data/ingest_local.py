"""Local ingest engine: a process pool without Ray.

Patients are packed into chunks of about ``shard_mb`` of input (but at least two chunks per
worker, so both cores stay busy on small inputs); each worker process reads, curates and writes
its chunk's volumes shard itself and sends back only the small tables.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import threading
from collections.abc import Callable

from hpc_seg.data.dsb2_layout import PatientFolder
from hpc_seg.data.ingest_patient import ChunkOptions, ChunkResult, run_chunk
from hpc_seg.data.shards import remove_stale_temporaries

log = logging.getLogger(__name__)


def plan_chunks(patients: list[PatientFolder], workers: int, shard_mb: float) -> list[list[PatientFolder]]:
    """Consecutive patients grouped up to ~shard_mb of input, and >= 2 chunks per worker."""
    total = sum(p.nbytes for p in patients)
    cap = min(shard_mb * 1e6, total / max(1, 2 * workers))
    chunks: list[list[PatientFolder]] = []
    size = 0.0
    for p in patients:
        if not chunks or (size + p.nbytes > cap and chunks[-1]):
            chunks.append([])
            size = 0.0
        chunks[-1].append(p)
        size += p.nbytes
    return chunks


def warm_up(opts: ChunkOptions, patients: list[PatientFolder]) -> None:
    """Pay one-time costs (lazy imports, codec set-up) in the parent, before the workers fork.

    pyarrow imports pandas on its first table conversion (~0.3 s) and the first Parquet write
    sets up its codec; done once here, every forked worker inherits the result instead of
    paying for it again.
    """
    import pandas  # noqa: F401  (imported by pyarrow on first use)
    import pyarrow as pa
    import pyarrow.parquet as pq

    from hpc_seg.data.dicom_read import read_frame

    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pydict({"x": [b"0" * 1024]}), sink, compression=opts.compression,
                   compression_level=opts.compression_level if opts.compression != "none" else None)
    first = next((p for p in patients if p.files), None)
    if first is not None:
        read_frame(opts.src / first.files[0], first.files[0])


def _ignore_sigint() -> None:
    # Ctrl-C is the parent's business: it stops the pool as a whole (see run_local), so a
    # worker is never torn down by the signal halfway through a pickle or a queue operation.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _run(args: tuple[ChunkOptions, list[PatientFolder]]) -> ChunkResult:
    return run_chunk(*args)


def run_local(opts: ChunkOptions, patients: list[PatientFolder], workers: int,
              on_result: Callable[[ChunkResult], None]) -> None:
    """Run every chunk, calling ``on_result`` in the parent as each one finishes.

    On an error or Ctrl-C the workers are terminated at once, temporary files they leave are
    removed (this run holds the OUT lock, so they are ours), and the exception propagates;
    results already handed over are committed by the caller. Complete shards of chunks that
    were not handed over are removed by the next run's clean start.
    """
    chunks = plan_chunks(patients, workers, opts.shard_mb)
    workers = max(1, min(workers, len(chunks)))
    log.info("local engine: %d chunk(s) on %d worker process(es)", len(chunks), workers)
    if workers == 1:
        for chunk in chunks:
            on_result(run_chunk(opts, chunk))
        return
    # Ctrl-C only sets a flag while the pool runs: an asynchronous KeyboardInterrupt landing inside
    # the pool's own locking (or in a worker still starting up) can deadlock terminate(). The loop
    # below polls the flag and stops the pool itself.
    stop = threading.Event()
    previous = _install_sigint(stop)
    pool = None
    try:
        warm_up(opts, patients)
        # Largest chunks first: the tail of the run is then short chunks, which balances cores.
        ordered = sorted(chunks, key=lambda c: -sum(p.nbytes for p in c))
        pool = multiprocessing.get_context("fork").Pool(workers, initializer=_ignore_sigint)
        results = pool.imap_unordered(_run, [(opts, c) for c in ordered])
        remaining = len(ordered)
        while remaining:
            if stop.is_set():
                raise KeyboardInterrupt
            try:
                result = results.next(timeout=0.2)
            except multiprocessing.TimeoutError:
                continue
            on_result(result)
            remaining -= 1
        pool.close()
        pool.join()
    except BaseException:
        if pool is not None:
            pool.terminate()
            pool.join()
        removed = remove_stale_temporaries(opts.out / "volumes")
        if removed:
            log.info("removed %d temporary file(s) of stopped workers", removed)
        raise
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def _install_sigint(stop: threading.Event):
    """Route SIGINT to ``stop`` (main thread only); returns the previous handler or None."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGINT, lambda signum, frame: stop.set())
