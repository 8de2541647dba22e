"""Commit protocol of the ingest output: atomic shards, a finished-marker table, clean re-runs.

Workers write ``volumes`` shards themselves. The parent buffers the small tables of finished
chunks and commits them as ``<table>/part-<commit>.parquet``, writing ``patients`` last. A
patient is finished exactly when it appears in ``patients``; its row carries the fingerprint of
the inputs it was made from (:mod:`~hpc_seg.cardiac.ingest.fingerprint`).

On start-up, and after :meth:`Committer.forget`, every row of a patient that is not finished is
removed from every table (rows of an interrupted commit, volumes of unfinished chunks, the old
rows of a patient being re-done), and every ``.tmp-*`` file, so a re-run never duplicates rows.
A damaged shard of our own (unreadable Parquet) is removed and the patients it held are re-done:
a damaged ``patients`` shard un-finishes its patients, a damaged small-table shard un-finishes
the patients of its commit, and a finished patient missing stacks in ``volumes`` is re-done.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
import uuid
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from hpc_seg.cardiac.ingest.patient import ChunkResult
from hpc_seg.cardiac.ingest.tables import SCHEMAS, TABLES
from hpc_seg.errors import CorruptShardError, OutputError
from hpc_seg.storage.shards import (atomic_write_table, output_error, read_shard,
                                    remove_stale_temporaries, shard_files)

log = logging.getLogger(__name__)

SMALL_TABLES = ("issues", "files", "dicom_metadata", "subjects")
LOCK_FILE = ".ingest.lock"


def _commit_tag(path: Path) -> str:
    return path.stem[len("part-"):]


def _owner(subject_ids: list[str], patients: set[str]) -> list[str | None]:
    """Patient of each subject id: the id itself, or ``<pid>_a``/``<pid>_b`` of a complete repeat
    (the ``files`` table has no patient column)."""
    out = []
    for s in subject_ids:
        out.append(s if s in patients or s[-2:] not in ("_a", "_b") else s[:-2])
    return out


class Committer:
    """Buffers small tables and commits them; knows which patients are finished."""

    def __init__(self, out: Path, *, every_s: float = 20.0, max_rows: int = 500_000,
                 compression: str = "zstd"):
        self.out = Path(out)
        self.every_s, self.max_rows, self.compression = every_s, max_rows, compression
        self._buffer: dict[str, list[pa.Table]] = {name: [] for name in (*SMALL_TABLES, "patients")}
        self._rows = 0
        self._last = time.monotonic()
        self._fingerprints: dict[str, str] = {}
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

    def finished_patients(self) -> dict[str, str | None]:
        """Patient id → recorded fingerprint (None: an output of before fingerprints)."""
        return dict(self._finished)

    def expect(self, fingerprints: dict[str, str]) -> None:
        """The fingerprints this run records for the patients it commits."""
        self._fingerprints = dict(fingerprints)

    # -- start-up clean-up -----------------------------------------------------------------

    def _read_or_drop(self, f: Path, columns: list[str]) -> pa.Table | None:
        """A shard's columns; a damaged shard is logged, removed, and None returned."""
        try:
            return read_shard(f, columns=columns)
        except CorruptShardError as exc:
            log.warning("%s; removing it, its patients are re-done", exc)
            f.unlink(missing_ok=True)
            return None

    def _clean_start(self) -> dict[str, str | None]:
        for name in TABLES:
            n = remove_stale_temporaries(self.out / name)
            if n:
                log.info("%s: removed %d stale temporary file(s)", self.out / name, n)
        finished: dict[str, str | None] = {}
        stacks: dict[str, int] = {}
        damaged_commits: set[str] = set()
        for name in SMALL_TABLES:       # a damaged small table un-finishes its commit
            for f in shard_files(self.out / name):
                if self._read_or_drop(f, [SCHEMAS[name].names[0]]) is None:
                    damaged_commits.add(_commit_tag(f))
        for f in shard_files(self.out / "patients"):
            if _commit_tag(f) in damaged_commits:
                log.warning("%s: its commit lost a shard; its patients are re-done", f)
                f.unlink()
                continue
            cols = ["patient_id", "n_stacks"] + \
                (["fingerprint"] if "fingerprint" in _schema_names(f) else [])
            table = self._read_or_drop(f, cols)
            if table is None:
                continue
            rows = table.to_pylist()
            finished.update({r["patient_id"]: r.get("fingerprint") for r in rows})
            stacks.update({r["patient_id"]: r["n_stacks"] for r in rows})
        committed = {_commit_tag(f) for f in shard_files(self.out / "patients")}
        for name in SMALL_TABLES:       # shards of a commit that never wrote its patients
            for f in shard_files(self.out / name):
                if _commit_tag(f) not in committed:
                    log.info("%s: removing shard of an interrupted commit", f)
                    f.unlink()
        have = Counter()
        for f in shard_files(self.out / "volumes"):
            table = self._read_or_drop(f, ["patient_id"])
            if table is not None:
                have.update(table.column(0).to_pylist())
        short = sorted(p for p in finished if have[p] < (stacks.get(p) or 0))
        if short:
            log.warning("volumes of finished patient(s) %s are missing (a damaged shard); "
                        "re-doing them", short)
            self._drop_patients_rows(set(short))
            for p in short:
                finished.pop(p)
        self._sweep(set(finished))
        return finished

    def _drop_patients_rows(self, pids: set[str]) -> None:
        """Remove ``pids`` from the ``patients`` table (their finished markers)."""
        for f in shard_files(self.out / "patients"):
            table = read_shard(f)
            keep = pc.invert(pc.is_in(table.column("patient_id"), pa.array(sorted(pids))))
            if pc.all(keep).as_py():
                continue
            kept = table.filter(keep)
            if kept.num_rows:
                atomic_write_table(kept, f, compression=self.compression)
            else:
                f.unlink()

    def _sweep(self, finished: set[str]) -> None:
        """Remove the rows of every patient that is not finished, from every table."""
        for name in (*SMALL_TABLES, "volumes"):
            key = "subject_id" if name == "files" else "patient_id"
            for f in shard_files(self.out / name):
                ids = read_shard(f, columns=[key]).column(0).to_pylist()
                owners = _owner(ids, finished) if name == "files" else ids
                keep = [o in finished for o in owners]
                if all(keep):
                    continue
                dropped = sorted({o for o, k in zip(owners, keep) if not k and o is not None})
                if not any(keep):
                    log.info("%s: removing rows of unfinished patient(s) %s", f, dropped)
                    f.unlink()
                    continue
                log.info("%s: rewriting without rows of patient(s) %s", f, dropped)
                table = read_shard(f).filter(pa.array(keep))
                if name == "volumes":
                    atomic_write_table(table, f, compression="none", row_group_size=1)
                else:
                    atomic_write_table(table, f, compression=self.compression)

    def forget(self, pids: set[str]) -> None:
        """Un-finish ``pids`` and remove all their rows (they are re-done by this run).

        The finished markers go first: an interruption after that leaves rows of unfinished
        patients, which the next start-up sweep removes."""
        if not pids:
            return
        self._drop_patients_rows(pids)
        for p in pids:
            self._finished.pop(p, None)
        self._sweep(set(self._finished))

    # -- commits ---------------------------------------------------------------------------

    def add(self, result: ChunkResult) -> None:
        """Buffer a finished chunk; commit when enough rows or time have gathered."""
        for name, table in result.tables.items():
            if name == "patients":
                ids = table.column("patient_id").to_pylist()
                table = table.set_column(table.schema.get_field_index("fingerprint"), "fingerprint",
                                         pa.array([self._fingerprints.get(p) for p in ids],
                                                  pa.string()))
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
        for t in self._buffer["patients"]:
            for pid, fp in zip(t.column("patient_id").to_pylist(),
                               t.column("fingerprint").to_pylist()):
                self._finished[pid] = fp
        self._buffer = {name: [] for name in self._buffer}
        self._rows = 0
        self._last = time.monotonic()


def _schema_names(path: Path) -> list[str]:
    """Column names of a shard (empty when its footer cannot be read)."""
    try:
        import pyarrow.parquet as pq

        return pq.read_schema(path).names
    except (pa.ArrowException, OSError):
        return []
