"""The per-patient unit of ingest work, shared by the local and the Ray engine.

:func:`run_chunk` reads a few patients' files (each file once, guarded), curates them, writes
their ``volumes`` rows as shard(s) directly from the worker (big arrays never travel back to the
parent), and returns the small tables for the parent to commit.
"""

from __future__ import annotations

import io
import logging
import math
import time
import uuid
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from hpc_seg.cardiac.ingest import tables as T
from hpc_seg.cardiac.curate.steps import Issue
from hpc_seg.cardiac.curate.stack import curate_patient
from hpc_seg.cardiac.decode_budget import DEFAULT_MAX_DECODED_MB, budget_bytes
from hpc_seg.cardiac.dicom.frame import QUIET_SKIPS, DicomFrame, FileSkip
from hpc_seg.cardiac.dicom.header import num, whole_number
from hpc_seg.cardiac.dicom.read import FileRead, read_frames
from hpc_seg.cardiac.ingest.series_select import SeriesChoice, filter_series, select_sax
from hpc_seg.cardiac.ingest.layout import PatientFolder, masks_path
from hpc_seg.cardiac.ingest.masks import MaskArchive
from hpc_seg.storage.shards import atomic_write_table
from hpc_seg.runtime.worker_memory import relaxed_gc

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ChunkOptions:
    """What a worker needs besides the patients (picklable, small)."""

    src: Path
    out: Path
    shard_mb: float = 128.0
    compression: str = "zstd"
    compression_level: int | None = 1
    pixel_compression: str = "none"
    truth: dict[str, tuple[float, float]] | None = None
    gap_rule: str = "published"         # curation step 6 (see curate.steps.GAP_RULES)
    max_decoded_mb: float | None = DEFAULT_MAX_DECODED_MB   # per-file budget (decode_budget)
    series: SeriesChoice = SeriesChoice()   # series the user takes or leaves


@dataclass(slots=True)
class ChunkResult:
    """Small tables and counts of a chunk of patients (the volumes are already on disk)."""

    tables: dict[str, pa.Table]
    volume_shards: list[str]
    n_patients: int
    n_files: int
    n_used: int
    skipped: Counter = field(default_factory=Counter)
    n_stacks: int = 0
    cpu_s: float = 0.0
    """CPU seconds of the process that ran the chunk (for the per-file cost in benchmarks)."""
    node: dict[str, str] | None = None
    """Where a Ray task ran it (``patient_key``, ``node_ip``, ``hostname``, ``node_id``)."""


class VolumeShards:
    """Volumes rows → shards ``volumes/part-<tag>-<n>.parquet`` of about ``target_mb`` each.

    Like :class:`~hpc_seg.storage.shards.ShardWriter`, but the array columns are wrapped without
    copies (:func:`ingest_tables.volumes_table`) and the rows of one patient stay together.
    """

    def __init__(self, opts: ChunkOptions, tag: str):
        self.opts, self.tag = opts, tag
        self.written: list[Path] = []
        self._rows: list[dict] = []
        self._bytes = 0

    def add_many(self, rows: list[dict]) -> None:
        """Buffer one patient's rows; write a shard once enough bytes have gathered."""
        self._rows += rows
        self._bytes += sum(r["pixels"].nbytes + (r["mask"].nbytes if r["mask"] is not None else 0)
                           for r in rows)
        if self._bytes >= self.opts.shard_mb * 1e6:
            self.flush()

    def flush(self) -> None:
        """Write the buffered rows as one shard (atomic)."""
        if not self._rows:
            return
        path = self.opts.out / "volumes" / f"part-{self.tag}-{len(self.written):05d}.parquet"
        table = T.volumes_table(self._rows)
        codecs = {name: self.opts.compression for name in table.column_names}
        codecs["pixels"] = self.opts.pixel_compression
        levels = {name: self.opts.compression_level for name, codec in codecs.items()
                  if codec == "zstd" and self.opts.compression_level is not None}
        atomic_write_table(table, path, compression=codecs, compression_level=levels or None,
                           # one row group per stack: the writer then holds one stack's
                           # compressed pages at a time (fresh memory was measured to cost more
                           # system time than the compression), and a reader can fetch one stack
                           row_group_size=1, write_options=T.VOLUMES_WRITE_OPTIONS)
        self.written.append(path)
        self._rows, self._bytes = [], 0


def open_masks(src: Path, pid: str) -> MaskArchive | None:
    """Masks of one patient as a lazy mapping SOPInstanceUID → array (:class:`MaskArchive`),
    or None when the cohort has none. Only the entries of files actually used get decompressed
    (the file also holds the long-axis images' masks). Close it after use."""
    path = masks_path(src, pid)
    return MaskArchive(path) if path.is_file() else None


def pixel_note_issues(pid: str, frames: list[DicomFrame]) -> list[Issue]:
    """One issue per kind of stored-value transform (rescale, MONOCHROME1, signed) met."""
    notes: dict[str, list[DicomFrame]] = {}
    for f in frames:
        if f.pixel_note:
            notes.setdefault(f.pixel_note, []).append(f)
    return [Issue(pid, "pixel_values", note, fs[0].file, f"{len(fs)} images")
            for note, fs in notes.items()]


def _read(path: Path, rel: str, budget: int | None, with_acquisition: bool) -> FileRead:
    """:func:`read_frames`, with a decoder that crashes as one skipped file: the Rust RLE
    decoder raises ``pyo3_runtime.PanicException`` (a BaseException, not an Exception) on some
    malformed segments, which would otherwise end the whole run (so would a MemoryError of a
    decoder, whose allocation has failed and left nothing behind)."""
    try:
        return read_frames(path, rel, with_acquisition=with_acquisition, max_bytes=budget)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - see the docstring
        cause = (str(exc).strip().splitlines() or [""])[0][:200]
        return FileRead([], FileSkip(rel, "decode_error", f"decoder crashed: "
                                                          f"{type(exc).__name__}: {cause}"), [])


#: header numbers that order or group images; a value that is not a whole number is read as 0
WHOLE_NUMBERS = ("SeriesNumber", "InstanceNumber", "CardiacNumberOfImages")


def number_issues(pid: str, meta: list[tuple[str, str, str, str, str]]) -> list[Issue]:
    """One ``bad_number`` issue per (keyword, value) of :data:`WHOLE_NUMBERS` that is not a
    whole number ('1.5', 'abc', 'inf'), with the first file and the count."""
    odd: dict[tuple[str, str], list[str]] = {}
    for file, _tag, keyword, _vr, value in meta:
        if keyword in WHOLE_NUMBERS and value.strip() and whole_number(value) == 0 \
                and value.split("\\")[0].strip() not in ("0", "+0", "-0", "0.0"):
            odd.setdefault((keyword, value), []).append(file)
        elif keyword == "TriggerTime" and not math.isfinite(num(value)):
            odd.setdefault((keyword, value), []).append(file)
    return [Issue(pid, "bad_number", f"{keyword} read as 0 (not set)", files[0],
                  f"{keyword} {value[:40]!r} is not a "
                  f"{'finite number' if keyword == 'TriggerTime' else 'whole number'} "
                  f"({len(files)} file(s))")
            for (keyword, value), files in odd.items()]


#: a position or spacing beyond this (mm) is not of a patient
MAX_MM = 1e6


def geometry_problem(f: DicomFrame) -> str | None:
    """Why a frame's geometry cannot place it (NaN, infinity, 1e300, zero or negative spacing,
    orientation vectors that are not two perpendicular directions); None when it can."""
    ipp, iop, ps = np.asarray(f.ipp, float), np.asarray(f.iop, float), np.asarray(f.pixel_spacing, float)
    if not (np.isfinite(ipp).all() and np.abs(ipp).max() < MAX_MM):
        return f"ImagePositionPatient {ipp.tolist()} is not a position"
    if not (np.isfinite(ps).all() and (ps > 0).all() and ps.max() < MAX_MM):
        return f"PixelSpacing {ps.tolist()} is not a spacing"
    if not (np.isfinite(iop).all() and np.abs(iop).max() <= 2):
        return f"ImageOrientationPatient {iop.tolist()} is not an orientation"
    u, v = iop[:3], iop[3:]
    if not (0.5 < np.linalg.norm(u) < 2 and 0.5 < np.linalg.norm(v) < 2
            and np.linalg.norm(np.cross(u, v)) > 0.5 * np.linalg.norm(u) * np.linalg.norm(v)):
        return f"ImageOrientationPatient {iop.tolist()} is not two perpendicular directions"
    return None


def _unusable(rel: str, frames: list[DicomFrame]) -> FileSkip | None:
    """A file whose image is empty (Rows or Columns 0), cannot be placed (:func:`geometry_problem`)
    or whose pixels hold NaN or infinity (float pixel data, a RescaleSlope of "nan"): skipped,
    since every later step would turn it into a volume silently (or fail on it). A TriggerTime
    that is not a finite number counts as missing (0), as a missing one does."""
    empty = [f for f in frames if f.pixels is None or f.pixels.size == 0 or f.rows < 1 or f.cols < 1]
    if empty:
        return FileSkip(rel, "no_pixel_data", f"empty image ({empty[0].rows} x {empty[0].cols} "
                                              "pixels)")
    for f in frames:
        why = geometry_problem(f)
        if why is not None:
            return FileSkip(rel, "missing_tags", f"geometry header unusable: {why}")
        if not math.isfinite(f.trigger_time_ms):
            f.trigger_time_ms = 0.0
    bad = [i + 1 for i, f in enumerate(frames)
           if f.pixels is not None and f.pixels.dtype.kind == "f" and not np.isfinite(f.pixels).all()]
    if not bad:
        return None
    where = "" if len(frames) == 1 else f" in frame(s) {bad[:10]}"
    return FileSkip(rel, "non_finite", f"NaN or infinite pixel values{where}")


def process_patient(opts: ChunkOptions, patient: PatientFolder,
                    ) -> tuple[list[dict], dict[str, pa.Table], Counter, int]:
    """Read, curate and tabulate one patient.

    Returns (volume rows, small tables, skip-reason counts, number of files used).
    """
    t0 = time.perf_counter()
    frames: list[DicomFrame] = []
    issues: list[Issue] = []
    meta: list[tuple[str, str, str, str, str]] = []
    skipped: Counter = Counter()
    for prob in patient.problems:       # entries discovery could not list as files
        skipped[prob.reason] += 1
        issues.append(Issue(patient.pid, prob.reason, "entry skipped", prob.file, prob.detail))
        log.warning("%s: skipped (%s): %s", opts.src / prob.file, prob.reason, prob.detail)
    source: dict[str, str] = {}         # frame.file → the file it came from (multi-frame)
    budget = budget_bytes(opts.max_decoded_mb)
    for rel in patient.files:
        # the acquisition fields serve only the choice of series from headers
        got, skip, rows, logged = _read(opts.src / rel, rel, budget, patient.select_series)
        meta.extend(rows)
        # what pydicom logged about the file: in the table, not on the console
        issues += [Issue(patient.pid, "pydicom_log", "logged by pydicom", rel, line)
                   for line in logged]
        if skip is None and got:
            skip = _unusable(rel, got)
            got = [] if skip is not None else got
        if skip is not None:
            # decoders report several plugins' errors on several lines: one line per file
            skip = FileSkip(skip.file, skip.reason, " ".join(skip.detail.split()))
            skipped[skip.reason] += 1
            issues.append(Issue(patient.pid, skip.reason, "file skipped", skip.file, skip.detail))
            (log.debug if skip.reason in QUIET_SKIPS else log.warning)(
                "%s: skipped (%s): %s", opts.src / rel, skip.reason, skip.detail)
        for frame in got:
            frames.append(frame)
            if frame.file != rel:
                source[frame.file] = rel
    if not patient.files:
        issues.append(Issue(patient.pid, "no_sax_series", "patient skipped", "",
                            "no study/sax_* folder with files"))
    if patient.select_series or opts.series:
        # an export: the SAX stack is chosen from headers; a folder layout: the user's choice
        kept, more = select_sax(patient.pid, frames, opts.series) if patient.select_series \
            else filter_series(patient.pid, frames, opts.series)
        issues += more
        # counted as skipped files too (the issues rows say which series and why)
        kept_files = {source.get(f.file, f.file) for f in kept}
        dropped = {source.get(f.file, f.file) for f in frames} - kept_files
        if dropped:
            skipped["series_skipped"] += len(dropped)
        frames = kept
    issues += pixel_note_issues(patient.pid, frames)
    issues += number_issues(patient.pid, meta)
    masks = None
    has_images = bool(patient.files)
    try:
        masks = open_masks(opts.src, patient.pid)
        stacks, more = curate_patient(patient.pid, frames, masks, gap_rule=opts.gap_rule) \
            if has_images else ([], [])
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
        # A broken mask file must not lose the images: curate again without masks.
        issues.append(Issue(patient.pid, "mask_unreadable", "stacks written without masks",
                            str(masks_path(opts.src, patient.pid)), f"{type(exc).__name__}: {exc}"))
        stacks, more = curate_patient(patient.pid, frames, None, gap_rule=opts.gap_rule) \
            if has_images else ([], [])
    finally:
        if masks is not None:
            masks.close()
    issues += more
    volume_rows = [T.volume_row(s, patient.pid, patient.split) for s in stacks]
    header: dict[str, dict[str, str]] = {}
    firsts = {source.get(s.files[0].file, s.files[0].file) for s in stacks if s.files}
    for file, _tag, keyword, _vr, value in meta:
        if file in firsts:
            header.setdefault(file, {})[keyword] = value
    for s in stacks:        # a frame of a multi-frame file: the header of that file
        if s.files and s.files[0].file in source:
            header[s.files[0].file] = header.get(source[s.files[0].file], {})
    used = len({source.get(u.file, u.file) for s in stacks for u in s.files})
    tables = {
        "issues": T.issues_table(issues, patient.pid),
        "files": T.files_table(stacks),
        "dicom_metadata": T.metadata_table(meta, patient.pid),
        "subjects": T.subjects_table(stacks, patient.pid, patient.split, header, issues, opts.truth),
        "patients": T.patients_table(patient.pid, patient.split, len(patient.files), used,
                                     sum(skipped.values()), len(stacks), time.perf_counter() - t0),
    }
    return volume_rows, tables, skipped, used


def run_chunk(opts: ChunkOptions, patients: list[PatientFolder], tag: str | None = None) -> ChunkResult:
    """Process patients in order; write their volumes as shard(s) ``volumes/part-<tag>-<n>``.

    A patient's rows always land in one shard. An exception or Ctrl-C leaves only complete
    shards; the parent does not mark these patients finished, so a re-run redoes them.
    """
    tag = tag or uuid.uuid4().hex[:12]
    cpu0 = time.process_time()
    parts: dict[str, list[pa.Table]] = {name: [] for name in T.TABLES if name != "volumes"}
    skipped: Counter = Counter()
    n_files = n_used = n_stacks = 0
    writer = VolumeShards(opts, tag)
    # On an error or Ctrl-C the buffered rows are dropped: only complete shards reach disk.
    with relaxed_gc():
        for patient in patients:
            rows, tables, skip, used = process_patient(opts, patient)
            writer.add_many(rows)
            for name, table in tables.items():
                parts[name].append(table)
            skipped.update(skip)
            n_files += len(patient.files)
            n_used += used
            n_stacks += len(rows)
        writer.flush()
    tables = {name: pa.concat_tables(ts) if ts else T.SCHEMAS[name].empty_table()
              for name, ts in parts.items()}
    return ChunkResult(tables, [str(p) for p in writer.written], len(patients), n_files, n_used,
                       skipped, n_stacks, cpu_s=time.process_time() - cpu0)


def tables_to_bytes(tables: dict[str, pa.Table]) -> dict[str, bytes]:
    """Arrow IPC bytes per table (how the Ray engine ships small tables to the driver)."""
    out = {}
    for name, table in tables.items():
        sink = io.BytesIO()
        with pa.ipc.new_stream(sink, table.schema) as w:
            w.write_table(table)
        out[name] = sink.getvalue()
    return out


def tables_from_bytes(blobs: dict[str, bytes]) -> dict[str, pa.Table]:
    """Inverse of :func:`tables_to_bytes`."""
    return {name: pa.ipc.open_stream(b).read_all() for name, b in blobs.items()}
