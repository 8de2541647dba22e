"""Local ingest engine: a process pool without Ray.

Patients are packed into chunks of about ``shard_mb`` of input (but at least
:data:`CHUNKS_PER_WORKER` chunks per worker, so that the cores stay busy until the end on small
inputs); each worker process reads, curates and writes its chunk's volumes shard itself and sends
back only the small tables.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import shutil
import signal
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

from hpc_seg.cardiac.ingest.layout import PatientFolder
from hpc_seg.cardiac.ingest.patient import ChunkOptions, ChunkResult, run_chunk
from hpc_seg.storage.shards import atomic_write_bytes, remove_stale_temporaries
from hpc_seg.runtime.worker_memory import die_with_parent, keep_freed_memory
from hpc_seg.errors import WorkerDiedError

log = logging.getLogger(__name__)


#: Chunks run largest first, so a core idles at the end for at most about one small chunk. With
#: 2 chunks per worker a 20-patient cohort (1.6 GB) took 3.42 s median on 2 cores, with 4 3.05 s,
#: with 10 (one patient each) 2.94 s; 8 keeps most of that gain with half the shard files.
CHUNKS_PER_WORKER = 8


def plan_chunks(patients: list[PatientFolder], workers: int, shard_mb: float) -> list[list[PatientFolder]]:
    """Consecutive patients grouped up to ~shard_mb of input, and >= CHUNKS_PER_WORKER per worker."""
    total = sum(p.nbytes for p in patients)
    cap = min(shard_mb * 1e6, total / max(1, CHUNKS_PER_WORKER * workers))
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

    from hpc_seg.cardiac.dicom.read import read_frame

    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pydict({"x": [b"0" * 1024]}), sink, compression=opts.compression,
                   compression_level=opts.compression_level if opts.compression != "none" else None)
    first = next((p for p in patients if p.files), None)
    if first is not None:
        read_frame(opts.src / first.files[0], first.files[0])


def _init_worker(parent: int) -> None:
    # Ctrl-C is the parent's business: it stops the pool as a whole (see run_local), so a
    # worker is never torn down by the signal halfway through a pickle or a queue operation.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A killed parent (kill -9, OOM) must not leave workers curating to the end of their chunk
    # and printing BrokenPipe tracebacks: the kernel kills them with it. Their half-written
    # temporaries are removed by the next run's clean start.
    die_with_parent(parent)
    keep_freed_memory()


#: where workers leave their results for the parent (under OUT; removed after the run)
SPOOL_DIR = ".spool"


def _run(args: tuple[ChunkOptions, list[PatientFolder]]) -> Path:
    """Run one chunk in a worker; the result goes through a file, only its path through the pipe.

    Results sent through the pool's pipe can deadlock ``Pool.terminate()`` on Ctrl-C: a worker
    writing a result bigger than the pipe buffer holds the queue's lock while the parent's
    result thread has already stopped reading, and terminate() waits for that lock forever
    (seen 1 run in ~10 of the real-SIGINT test). A short path always fits the pipe buffer.
    """
    opts, chunk = args
    result = run_chunk(opts, chunk)
    path = opts.out / SPOOL_DIR / f"{uuid.uuid4().hex}.pkl"
    atomic_write_bytes(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL), path)
    return path


def _collect(path: Path) -> ChunkResult:
    """Load (and delete) a result a worker spooled."""
    result = pickle.loads(path.read_bytes())
    path.unlink()
    return result


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
        shutil.rmtree(opts.out / SPOOL_DIR, ignore_errors=True)   # results of a killed run
        warm_up(opts, patients)
        # Largest chunks first: the tail of the run is then short chunks, which balances cores.
        ordered = sorted(chunks, key=lambda c: -sum(p.nbytes for p in c))
        pool = multiprocessing.get_context("fork").Pool(workers, initializer=_init_worker,
                                                        initargs=(os.getpid(),))
        # Pool replaces a worker that dies (OOM killer, a signal) but loses its chunk, and would
        # wait for it forever; watching the first workers' exit codes turns that into an error.
        # (``_pool`` is multiprocessing's own list of worker processes, unchanged since 3.x.)
        workers_started = list(pool._pool)
        results = pool.imap_unordered(_run, [(opts, c) for c in ordered])
        remaining = len(ordered)
        while remaining:
            if stop.is_set():
                raise KeyboardInterrupt
            try:
                result = results.next(timeout=0.2)
            except multiprocessing.TimeoutError:
                _check_alive(workers_started)
                continue
            on_result(_collect(result))
            remaining -= 1
        pool.close()
        pool.join()
        shutil.rmtree(opts.out / SPOOL_DIR, ignore_errors=True)
    except BaseException:
        if pool is not None:
            _terminate(pool)
        removed = remove_stale_temporaries(opts.out / "volumes")
        if removed:
            log.info("removed %d temporary file(s) of stopped workers", removed)
        shutil.rmtree(opts.out / SPOOL_DIR, ignore_errors=True)
        raise
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


TERMINATE_TIMEOUT_S = 10.0


def _terminate(pool, timeout_s: float = TERMINATE_TIMEOUT_S) -> None:
    """``pool.terminate()`` and ``join()``, bounded in time.

    After a worker was killed, terminate can block for ever in multiprocessing's own clean-up,
    waiting for the task queue's read lock (an idle worker holds that lock while it waits for a
    task). Seen once in CI and twice in 12 local runs of the killed-worker test; which holder never
    lets go was not pinned down. So it runs in a daemon thread; if it has not returned in
    ``timeout_s``, the workers are killed here and the caller goes on to report the original error
    (the stuck thread ends with the process).
    """
    done = threading.Thread(target=lambda: (pool.terminate(), pool.join()), daemon=True,
                            name="ingest-pool-terminate")
    done.start()
    done.join(timeout_s)
    if done.is_alive():
        for p in list(pool._pool):
            if p.exitcode is None:
                p.kill()
        log.warning("local engine: the worker pool did not stop within %.0f s; its workers were "
                    "killed", timeout_s)


def _check_alive(processes: list) -> None:
    """Raise :class:`WorkerDiedError` when one of ``processes`` has exited (workers never exit on
    their own before the pool is closed)."""
    for p in processes:
        if p.exitcode is not None:
            how = (f"killed by signal {-p.exitcode}" + (" (SIGKILL: out of memory?)" if p.exitcode == -9 else "")
                   if p.exitcode < 0 else f"exit code {p.exitcode}")
            raise WorkerDiedError(f"ingest worker process {p.pid} died ({how}); the patients it was "
                                  f"curating are not marked finished and a re-run redoes them")


def _install_sigint(stop: threading.Event):
    """Route SIGINT to ``stop`` (main thread only); returns the previous handler or None."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGINT, lambda signum, frame: stop.set())
