"""Parquet shard I/O shared by every stage.

Conventions (the README's section on shards describes them for users):

- arrays are stored as C-order ``bytes`` with explicit ``<name>_shape``-style list and ``dtype``
  columns, so plain pyarrow/pandas read every shard without importing Ray (Ray's tensor extension
  keeps only the first file's shape when a directory is read);
- every file is written to a temporary name in the same directory and renamed, so a crash or
  Ctrl-C never leaves a half-written shard under its final name;
- zstd compression at a low level: pixel bytes compress well enough and level 1-3 keeps the
  writer from being the bottleneck.
"""

from __future__ import annotations

import errno
import os
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from hpc_seg.errors import CorruptShardError, MissingTableError, OutputError

TMP_PREFIX = ".tmp-"
DEFAULT_COMPRESSION = "zstd"
DEFAULT_COMPRESSION_LEVEL = 1


def encode_array(array: np.ndarray) -> tuple[bytes, list[int], str]:
    """Return (C-order bytes, shape, dtype string) for a shard row."""
    array = np.ascontiguousarray(array)
    return array.tobytes(), list(array.shape), array.dtype.str


def decode_array(data: bytes, shape: Iterable[int], dtype: str) -> np.ndarray:
    """Inverse of :func:`encode_array` (returns a read-only view of ``data``)."""
    return np.frombuffer(data, dtype=np.dtype(dtype)).reshape(tuple(int(s) for s in shape))


def atomic_write_table(table: pa.Table, path: str | Path, *,
                       compression: str | dict[str, str] = DEFAULT_COMPRESSION,
                       compression_level: int | dict[str, int] | None = DEFAULT_COMPRESSION_LEVEL,
                       row_group_size: int | None = None,
                       write_options: dict[str, Any] | None = None) -> Path:
    """Write ``table`` to ``path`` via a temporary file and a rename.

    ``compression`` (and ``compression_level``) may map column names to codecs (levels).
    ``write_options`` go to ``pq.write_table`` as they are (e.g. ``use_dictionary=False,
    write_statistics=[...]``: dictionary and min/max statistics over large binary array
    columns cost more than the compression itself and serve no query).

    Raises :class:`OutputError` naming the path for permission and disk-full errors; the temporary
    file is removed in every failure case.
    """
    return atomic_write(path, lambda tmp: pq.write_table(
        table, tmp, compression=compression,
        compression_level=compression_level if compression != "none" else None,
        row_group_size=row_group_size, **(write_options or {})))


def atomic_write(path: str | Path, write: Callable[[Path], Any]) -> Path:
    """Call ``write(tmp)`` for a temporary name next to ``path``, then rename it to ``path``.

    Any file format works (Parquet, NIfTI, PNG). On failure the temporary file is removed, and an
    OSError becomes an :class:`OutputError` naming ``path`` and the cause.
    """
    path = Path(path)
    tmp = path.with_name(f"{TMP_PREFIX}{uuid.uuid4().hex[:8]}-{path.name}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise output_error(path, exc) from None
        raise
    return path


def output_error(path: Path, exc: OSError) -> OutputError:
    """Translate an OSError on an output path into a one-line user error."""
    reason = {errno.ENOSPC: "no space left on device", errno.EACCES: "permission denied",
              errno.EROFS: "read-only file system", errno.EDQUOT: "disk quota exceeded"}.get(
        exc.errno, exc.strerror or str(exc))
    return OutputError(f"{path}: cannot write output: {reason}")


def atomic_write_bytes(data: bytes, path: str | Path) -> Path:
    """Write raw bytes (JSON, CSV, PNG) atomically."""
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def shard_files(directory: str | Path) -> list[Path]:
    """Finished shard files of a table directory, in name order (temporary files excluded)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.glob("*.parquet") if not p.name.startswith(TMP_PREFIX))


def remove_stale_temporaries(directory: str | Path) -> int:
    """Delete temporary files left by a killed writer; returns how many were removed."""
    directory = Path(directory)
    n = 0
    if directory.is_dir():
        for p in directory.glob(f"{TMP_PREFIX}*"):
            p.unlink(missing_ok=True)
            n += 1
    return n


def shard_error(path: str | Path, exc: Exception) -> CorruptShardError:
    """One line naming a damaged shard and the cause (pyarrow's message, first line only)."""
    cause = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return CorruptShardError(f"{path}: damaged Parquet file ({cause}); delete it and re-run the "
                             f"stage that wrote it")


#: what pyarrow raises on a file that is not (or no longer) valid Parquet
_READ_ERRORS = (pa.ArrowException, OSError)


def open_shard(path: str | Path) -> pq.ParquetFile:
    """``pq.ParquetFile(path)``, with a damaged file as :class:`CorruptShardError`."""
    try:
        return pq.ParquetFile(path)
    except _READ_ERRORS as exc:
        raise shard_error(path, exc) from None


def read_shard(path: str | Path, columns: list[str] | None = None, filters: Any = None) -> pa.Table:
    """``pq.read_table`` of one shard, with a damaged file as :class:`CorruptShardError`."""
    try:
        return pq.read_table(path, columns=columns, filters=filters)
    except _READ_ERRORS as exc:
        raise shard_error(path, exc) from None


def read_table(directory: str | Path, columns: list[str] | None = None,
               filters: Any = None) -> pa.Table:
    """Read every finished shard of a table directory into one Arrow table."""
    files = shard_files(directory)
    if not files:
        raise MissingTableError(f"{directory}: no finished parquet shard (wrong path, or the "
                                f"stage that writes it has not run)")
    try:
        return pq.read_table([str(f) for f in files], columns=columns, filters=filters)
    except _READ_ERRORS as exc:
        for f in files:                     # name the damaged file, not just the folder
            open_shard(f).read(columns=columns)
        raise shard_error(directory, exc) from None


def read_column_values(directory: str | Path, column: str) -> set[Any]:
    """Distinct values of one column over all shards (cheap: reads only that column)."""
    values: set[Any] = set()
    for f in shard_files(directory):
        values.update(read_shard(f, columns=[column]).column(column).to_pylist())
    return values


def iter_rows(directory: str | Path, columns: list[str] | None = None,
              batch_size: int = 64) -> Iterator[dict[str, Any]]:
    """Stream rows as dicts without loading the whole table (record batch at a time)."""
    for f in shard_files(directory):
        pf = open_shard(f)
        try:
            for batch in pf.iter_batches(batch_size=batch_size, columns=columns):
                yield from batch.to_pylist()
        except _READ_ERRORS as exc:
            raise shard_error(f, exc) from None


class ShardWriter:
    """Accumulate rows and flush them as numbered shards of about ``target_mb`` each.

    Shard names carry a writer tag (``part-<tag>-<n>.parquet``) so concurrent writers (Ray
    workers, pool processes) never collide, and a re-run never overwrites finished shards.
    """

    def __init__(self, directory: str | Path, *, schema: pa.Schema | None = None,
                 target_mb: float = 128.0, tag: str | None = None,
                 compression: str = DEFAULT_COMPRESSION,
                 compression_level: int | None = DEFAULT_COMPRESSION_LEVEL,
                 write_options: dict[str, Any] | None = None):
        self.directory = Path(directory)
        self.write_options = write_options
        self.schema = schema
        self.target_bytes = int(target_mb * 1e6)
        self.tag = tag or uuid.uuid4().hex[:8]
        self.compression, self.compression_level = compression, compression_level
        self._rows: list[dict[str, Any]] = []
        self._bytes = 0
        self._n = 0
        self.written: list[Path] = []

    def add(self, row: dict[str, Any], nbytes: int | None = None) -> None:
        self._rows.append(row)
        self._bytes += nbytes if nbytes is not None else _row_nbytes(row)
        if self._bytes >= self.target_bytes:
            self.flush()

    def add_many(self, rows: Iterable[dict[str, Any]]) -> None:
        """Add rows that must land in the same shard (e.g. all rows of one subject)."""
        rows = list(rows)
        self._rows.extend(rows)
        self._bytes += sum(_row_nbytes(r) for r in rows)
        if self._bytes >= self.target_bytes:
            self.flush()

    def flush(self) -> Path | None:
        if not self._rows:
            return None
        table = pa.Table.from_pylist(self._rows, schema=self.schema)
        path = self.directory / f"part-{self.tag}-{self._n:05d}.parquet"
        atomic_write_table(table, path, compression=self.compression,
                           compression_level=self.compression_level,
                           write_options=self.write_options)
        self.written.append(path)
        self._n += 1
        self._rows, self._bytes = [], 0
        return path

    def close(self) -> list[Path]:
        self.flush()
        return self.written

    def __enter__(self) -> "ShardWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        # On error or Ctrl-C, drop the buffered rows: only complete units reach disk.
        if exc_type is None:
            self.close()


def _row_nbytes(row: dict[str, Any]) -> int:
    return sum(len(v) if isinstance(v, (bytes, bytearray)) else 8 for v in row.values())
