"""Schemas and row builders of the ingest output tables.

All tables are directories of Parquet shards under ``OUT/``; plain pyarrow/pandas read them.

- ``volumes``: one row per cleaned stack (arrays as bytes + shape + dtype; affine row-major
  4x4 mapping (col i, row j, slice k, 1) → LPS mm).
- ``issues``: every quirk met and every file skipped, with the resolution.
- ``files``: which DICOM file became which (slice, frame) of which stack (``path#n``: frame n
  of a multi-frame file).
- ``dicom_metadata``: long format, one row per (file, non-binary top-level element).
- ``subjects``: one row per stack: dimensions, spacing, patient metadata, truth volumes.
- ``patients``: one row per processed patient; written last in each commit, it is the
  "finished" marker that lets a re-run skip work.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from hpc_seg.cardiac.curate.steps import Issue
from hpc_seg.cardiac.curate.stack import CuratedStack

TABLES = ("volumes", "issues", "files", "dicom_metadata", "subjects", "patients")

VOLUMES = pa.schema([
    ("stack_id", pa.string()), ("subject_id", pa.string()), ("patient_id", pa.string()),
    ("split", pa.string()), ("rotated_90", pa.bool_()), ("shape", pa.list_(pa.int64())),
    ("dtype", pa.string()), ("pixels", pa.binary()), ("mask", pa.binary()),
    ("pixel_spacing_mm", pa.list_(pa.float64())), ("slice_spacing_mm", pa.float64()),
    ("slice_positions_mm", pa.list_(pa.float64())), ("frame_times_ms", pa.list_(pa.float64())),
    ("affine", pa.list_(pa.float64())), ("scale_factor", pa.float64()),
    ("series_numbers", pa.list_(pa.int64())),
])
#: no dictionary or min/max statistics over the big array columns (that work would cost more than
#: compressing them); statistics on the id columns keep ``filters=[("stack_id", "==", ...)]`` cheap.
#: A data page as large as a stack's array: with the default 1 MB pages the writer splits and
#: compresses each multi-MB value in page-sized pieces, measured 2-3x slower than one page.
VOLUMES_WRITE_OPTIONS = {"use_dictionary": ["stack_id", "subject_id", "patient_id", "split", "dtype"],
                         "write_statistics": ["stack_id", "subject_id", "patient_id", "split"],
                         "data_page_size": 256 << 20}
#: the array columns of ``volumes`` (held as numpy arrays until the table is built)
ARRAY_COLUMNS = ("pixels", "mask")
ISSUES = pa.schema([("subject_id", pa.string()), ("patient_id", pa.string()),
                    ("problem", pa.string()), ("resolution", pa.string()),
                    ("file", pa.string()), ("detail", pa.string())])
FILES = pa.schema([("subject_id", pa.string()), ("stack_id", pa.string()), ("slice", pa.int32()),
                   ("frame", pa.int32()), ("series_number", pa.int64()), ("file", pa.string()),
                   ("filled", pa.bool_())])
METADATA = pa.schema([("patient_id", pa.string()), ("file", pa.string()), ("tag", pa.string()),
                      ("keyword", pa.string()), ("vr", pa.string()), ("value", pa.string())])
#: per-stack metadata columns taken from the DICOM header of the stack's first file
SUBJECT_KEYWORDS = {"PatientAge": "age", "PatientSex": "sex",
                    "MagneticFieldStrength": "field_strength_t", "Manufacturer": "manufacturer",
                    "ManufacturerModelName": "model", "RepetitionTime": "repetition_time_ms",
                    "EchoTime": "echo_time_ms", "FlipAngle": "flip_angle_deg",
                    "SliceThickness": "slice_thickness_mm"}
SUBJECTS = pa.schema([
    ("stack_id", pa.string()), ("subject_id", pa.string()), ("patient_id", pa.string()),
    ("split", pa.string()), ("rotated_90", pa.bool_()), ("frames", pa.int32()),
    ("slices", pa.int32()), ("rows", pa.int32()), ("cols", pa.int32()),
    ("pixel_spacing_row_mm", pa.float64()), ("pixel_spacing_col_mm", pa.float64()),
    ("slice_spacing_mm", pa.float64()), ("scale_factor", pa.float64()),
    ("n_files", pa.int32()), ("n_issues", pa.int32()),
    *[(name, pa.string()) for name in SUBJECT_KEYWORDS.values()],
    ("Systole", pa.float64()), ("Diastole", pa.float64()),
])
PATIENTS = pa.schema([("patient_id", pa.string()), ("split", pa.string()),
                      ("n_files", pa.int32()), ("n_used", pa.int32()), ("n_skipped", pa.int32()),
                      ("n_stacks", pa.int32()), ("seconds", pa.float64()),
                      # inputs + curation of the patient (ingest.fingerprint), set by the parent
                      ("fingerprint", pa.string())])
SCHEMAS = {"volumes": VOLUMES, "issues": ISSUES, "files": FILES, "dicom_metadata": METADATA,
           "subjects": SUBJECTS, "patients": PATIENTS}


def volume_row(stack: CuratedStack, patient_id: str, split: str) -> dict[str, Any]:
    """The ``volumes`` row of one stack; ``pixels``/``mask`` are C-contiguous numpy arrays
    (not yet bytes): :func:`volumes_table` wraps them without a copy."""
    pixels = np.ascontiguousarray(stack.pixels)
    shape, dtype = list(pixels.shape), pixels.dtype.str
    mask = np.ascontiguousarray(stack.mask, dtype=np.uint8) if stack.mask is not None else None
    return {"stack_id": stack.stack_id, "subject_id": stack.subject_id, "patient_id": patient_id,
            "split": split, "rotated_90": stack.rotated_90, "shape": shape, "dtype": dtype,
            "pixels": pixels, "mask": mask, "pixel_spacing_mm": list(stack.pixel_spacing_mm),
            "slice_spacing_mm": stack.slice_spacing_mm,
            "slice_positions_mm": list(stack.slice_positions_mm),
            "frame_times_ms": list(stack.frame_times_ms),
            "affine": np.asarray(stack.affine, float).reshape(-1).tolist(),
            "scale_factor": stack.scale_factor, "series_numbers": list(stack.series_numbers)}


def _binary_array(values: list[np.ndarray | None]) -> pa.ChunkedArray:
    """A binary column over the arrays' own memory (one chunk per value, no copy): building it
    with ``from_pylist`` from ``tobytes()`` copied every stack twice, ~40 % of the write time."""
    chunks = []
    for v in values:
        if v is None:
            chunks.append(pa.nulls(1, pa.binary()))
        else:
            data = pa.py_buffer(v.reshape(-1).view(np.uint8))
            offsets = pa.py_buffer(np.array([0, data.size], np.int32))
            chunks.append(pa.Array.from_buffers(pa.binary(), 1, [None, offsets, data]))
    return pa.chunked_array(chunks, pa.binary())


def volumes_table(rows: list[dict[str, Any]]) -> pa.Table:
    """The ``volumes`` table of rows from :func:`volume_row` (array columns zero-copy)."""
    cols = []
    for f in VOLUMES:
        values = [r[f.name] for r in rows]
        cols.append(_binary_array(values) if f.name in ARRAY_COLUMNS
                    else pa.chunked_array([pa.array(values, f.type)], f.type))
    return pa.Table.from_arrays(cols, schema=VOLUMES)


def issues_table(issues: list[Issue], patient_id: str) -> pa.Table:
    """The ``issues`` rows of one patient."""
    return pa.Table.from_pydict({
        "subject_id": [i.subject_id for i in issues], "patient_id": [patient_id] * len(issues),
        "problem": [i.problem for i in issues], "resolution": [i.resolution for i in issues],
        "file": [i.file for i in issues], "detail": [i.detail for i in issues]}, schema=ISSUES)


def files_table(stacks: list[CuratedStack]) -> pa.Table:
    """The ``files`` rows of a patient's stacks (one per slice and frame)."""
    cols: dict[str, list] = {name: [] for name in FILES.names}
    for s in stacks:
        for u in s.files:
            cols["subject_id"].append(s.subject_id)
            cols["stack_id"].append(s.stack_id)
            cols["slice"].append(u.slice)
            cols["frame"].append(u.frame)
            cols["series_number"].append(u.series_number)
            cols["file"].append(u.file)
            cols["filled"].append(u.filled)
    return pa.Table.from_pydict(cols, schema=FILES)


def metadata_table(rows: list[tuple[str, str, str, str, str]], patient_id: str) -> pa.Table:
    """The ``dicom_metadata`` rows from (file, tag, keyword, VR, value) tuples."""
    cols = list(zip(*rows)) if rows else [[], [], [], [], []]
    return pa.Table.from_arrays([pa.array([patient_id] * len(rows), pa.string())]
                                + [pa.array(list(c), pa.string()) for c in cols], schema=METADATA)


def subjects_table(stacks: list[CuratedStack], patient_id: str, split: str,
                   header: dict[str, dict[str, str]], issues: list[Issue],
                   truth: dict[str, tuple[float, float]] | None) -> pa.Table:
    """One row per stack; ``header`` maps a file to its {keyword: value} metadata."""
    rows = []
    for s in stacks:
        first = header.get(s.files[0].file, {}) if s.files else {}
        sys_dia = (truth or {}).get(patient_id, (None, None))
        t, k, r, c = s.pixels.shape
        row = {"stack_id": s.stack_id, "subject_id": s.subject_id, "patient_id": patient_id,
               "split": split, "rotated_90": s.rotated_90, "frames": t, "slices": k, "rows": r,
               "cols": c, "pixel_spacing_row_mm": s.pixel_spacing_mm[0],
               "pixel_spacing_col_mm": s.pixel_spacing_mm[1],
               "slice_spacing_mm": s.slice_spacing_mm, "scale_factor": s.scale_factor,
               "n_files": len({u.file for u in s.files}),
               "n_issues": sum(i.subject_id in (s.subject_id, patient_id) for i in issues),
               "Systole": sys_dia[0], "Diastole": sys_dia[1]}
        row.update({col: first.get(kw) for kw, col in SUBJECT_KEYWORDS.items()})
        row["field_strength_t"] = field_strength_tesla(row["field_strength_t"])
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=SUBJECTS)


#: MagneticFieldStrength above this is in gauss, not tesla (no MR magnet reaches 100 T)
GAUSS_ABOVE = 100.0


def field_strength_tesla(text: str | None) -> str | None:
    """MagneticFieldStrength in tesla: old GE files write it in gauss (15000 for 1.5 T, 2000
    seen in a real GENESIS_SIGNA file); the standard unit is tesla."""
    try:
        value = float(text) if text else None
    except ValueError:
        return text
    if value is None or value <= GAUSS_ABOVE:
        return text
    return f"{value / 10000.0:g}"


def patients_table(patient_id: str, split: str, n_files: int, n_used: int, n_skipped: int,
                   n_stacks: int, seconds: float) -> pa.Table:
    """The ``patients`` row (finished marker) of one patient."""
    return pa.Table.from_pylist([{"patient_id": patient_id, "split": split, "n_files": n_files,
                                  "n_used": n_used, "n_skipped": n_skipped,
                                  "n_stacks": n_stacks, "seconds": seconds}], schema=PATIENTS)
