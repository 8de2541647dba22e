"""Commit protocol of the ingest output: atomic shards, a finished-marker table, clean re-runs.

Workers write ``volumes`` shards themselves. The parent buffers the small tables of finished
chunks and commits them as ``<table>/part-<commit>.parquet``, writing ``patients`` last. A
patient is finished exactly when it appears in ``patients``. On start-up, every shard that no
committed patient vouches for (small-table shards of an interrupted commit, volumes shards of
unfinished patients) and every ``.tmp-*`` file is removed, so a re-run never duplicates rows.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from hpc_seg.cardiac.ingest.patient import ChunkResult
from hpc_seg.cardiac.ingest.tables import SCHEMAS, TABLES
from hpc_seg.storage.shards import (atomic_write_table, output_error, remove_stale_temporaries,
                                 shard_files)
from hpc_seg.errors import OutputError

log = logging.getLogger(__name__)

SMALL_TABLES = ("issues", "files", "dicom_metadata", "subjects")
LOCK_FILE = ".ingest.lock"


def _commit_tag(path: Path) -> str:
    return path.stem[len("part-"):]


class Committer:
    """Buffers small tables and commits them; knows which patients are finished."""

    def __init__(self, out: Path, *, every_s: float = 20.0, max_rows: int = 500_000,
                 compression: str = "zstd"):
        self.out = Path(out)
        self.every_s, self.max_rows, self.compression = every_s, max_rows, compression
        self._buffer: dict[str, list[pa.Table]] = {name: [] for name in (*SMALL_TABLES, "patients")}
        self._rows = 0
        self._last = time.monotonic()
        try:
            for name in TABLES:
                (self.out / name).mkdir(parents=True, exist_ok=True)
            self._lock = self._take_lock()
        except OSError as exc:
            raise output_error(self.out, exc) from None
        self._finished = self._clean_start()

    def _take_lock(self):
        """One ingest per OUT at a time: a second one would delete the first's fresh shards as
        orphans and both would commit the same patients. The lock dies with the process."""
        fh = open(self.out / LOCK_FILE, "a+")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            owner = fh.read().strip() or "unknown"
            fh.close()
            raise OutputError(f"{self.out}: another ingest is writing here (pid {owner}); "
                              f"wait for it or use another OUT") from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        return fh

    def close(self) -> None:
        """Release the OUT lock (buffered results must have been committed before)."""
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def table_dirs(self) -> dict[str, Path]:
        """Directory of each output table."""
        return {name: self.out / name for name in TABLES}

    def finished_patients(self) -> set[str]:
        """Patient ids committed by this or an earlier run."""
        return set(self._finished)

    def _clean_start(self) -> set[str]:
        for name in TABLES:
            n = remove_stale_temporaries(self.out / name)
            if n:
                log.info("%s: removed %d stale temporary file(s)", self.out / name, n)
        committed, finished = set(), set()
        for f in shard_files(self.out / "patients"):
            committed.add(_commit_tag(f))
            finished.update(pq.read_table(f, columns=["patient_id"]).column(0).to_pylist())
        for name in SMALL_TABLES:
            for f in shard_files(self.out / name):
                if _commit_tag(f) not in committed:
                    log.info("%s: removing shard of an interrupted commit", f)
                    f.unlink()
        for f in shard_files(self.out / "volumes"):
            ids = set(pq.read_table(f, columns=["patient_id"]).column(0).to_pylist())
            if not ids <= finished:
                log.info("%s: removing volumes of unfinished patient(s) %s", f, sorted(ids - finished))
                f.unlink()
        return finished

    def add(self, result: ChunkResult) -> None:
        """Buffer a finished chunk; commit when enough rows or time have gathered."""
        for name, table in result.tables.items():
            self._buffer[name].append(table)
            self._rows += table.num_rows
        if self._rows >= self.max_rows or time.monotonic() - self._last >= self.every_s:
            self.commit()

    def commit(self) -> None:
        """Write the buffered tables; ``patients`` last, so a crash in between is undone later."""
        if not self._buffer["patients"]:
            return
        tag = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
        for name in (*SMALL_TABLES, "patients"):
            tables = self._buffer[name]
            table = pa.concat_tables(tables) if tables else SCHEMAS[name].empty_table()
            if table.num_rows or name == "patients":
                atomic_write_table(table, self.out / name / f"part-{tag}.parquet",
                                   compression=self.compression)
        for pid in self._buffer["patients"]:
            self._finished.update(pid.column("patient_id").to_pylist())
        self._buffer = {name: [] for name in self._buffer}
        self._rows = 0
        self._last = time.monotonic()
