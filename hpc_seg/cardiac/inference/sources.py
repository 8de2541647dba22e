"""Turn a ``predict`` SRC into curated stacks: a DICOM folder, a 4D NIfTI, or a ``volumes`` table.

DICOM input goes through ingest itself (same discovery, curation and ``issues`` table), into
``OUT/ingest/``; prediction then reads that ``volumes`` table like any other. A NIfTI becomes one
in-memory stack whose affine is the file's, converted from RAS to the tables' LPS convention.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hpc_seg.cardiac.decode_budget import DEFAULT_MAX_DECODED_MB
from hpc_seg.cardiac.export_nifti import LPS_TO_RAS
from hpc_seg.errors import InputError
from hpc_seg.storage.shards import decode_array, iter_rows, open_shard, shard_files

log = logging.getLogger(__name__)

#: ``volumes`` columns prediction reads
STACK_COLUMNS = ["stack_id", "subject_id", "patient_id", "split", "rotated_90", "shape", "dtype",
                 "pixels", "pixel_spacing_mm", "slice_spacing_mm", "frame_times_ms", "affine",
                 "scale_factor"]


@dataclass
class Source:
    """Where the stacks of one prediction run come from."""

    kind: str                      # "dicom", "nifti" or "volumes"
    volumes_dir: Path | None       # the ``volumes`` table (None for a NIfTI)
    dicom_root: Path | None        # root the ``files`` table's paths are relative to (DICOM only)
    nifti: Path | None = None

    @property
    def files_dir(self) -> Path | None:
        """The ingest ``files`` table next to ``volumes`` (which DICOM file made which plane)."""
        if self.volumes_dir is None:
            return None
        d = self.volumes_dir.parent / "files"
        return d if shard_files(d) else None

    @property
    def issues_dir(self) -> Path | None:
        if self.volumes_dir is None:
            return None
        d = self.volumes_dir.parent / "issues"
        return d if shard_files(d) else None


def is_nifti(path: Path) -> bool:
    return path.is_file() and path.name.endswith((".nii", ".nii.gz"))


def volumes_dir_of(path: Path) -> Path | None:
    """``path`` itself or ``path/volumes`` when it holds ``volumes`` shards, else None (a
    damaged shard: one-line :class:`~hpc_seg.storage.shards.CorruptShardError`)."""
    for cand in (path, path / "volumes"):
        files = shard_files(cand)
        if files and {"pixels", "affine", "stack_id"} <= set(open_shard(files[0]).schema_arrow.names):
            return cand
    return None


def open_source(src: Path, out: Path, *, workers: int | None = None,
                max_decoded_mb: float | None = DEFAULT_MAX_DECODED_MB) -> Source:
    """Classify ``src``; ingest a DICOM folder into ``out/ingest``. InputError when unusable."""
    src = Path(src)
    if not src.exists():
        raise InputError(f"{src}: input does not exist")
    if is_nifti(src):
        return Source("nifti", None, None, nifti=src)
    if src.is_file():
        raise InputError(f"{src}: not a folder of DICOM files, a 4D NIfTI (.nii/.nii.gz), or an "
                         "ingested volumes table")
    vol = volumes_dir_of(src)
    if vol is not None:
        return Source("volumes", vol, None)
    from hpc_seg.cardiac.ingest.run import IngestConfig, ingest

    summary = ingest(src, out / "ingest", IngestConfig(engine="local", workers=workers,
                                                       max_decoded_mb=max_decoded_mb))
    vol = out / "ingest" / "volumes"
    if not shard_files(vol):
        raise InputError(f"{src}: ingest found no usable cine short-axis stack "
                         f"({summary.files_skipped} of {summary.files} files skipped: "
                         f"{summary.skipped_by_reason}); see {out / 'ingest' / 'issues'}")
    return Source("dicom", vol, src)


def iter_stacks(source: Source) -> Iterator[dict[str, Any]]:
    """Curated stacks as ``volumes``-like rows with ``pixels`` decoded (rotated copies left out:
    they are training augmentation, the same voxels turned by 90 degrees)."""
    if source.kind == "nifti":
        yield nifti_stack(source.nifti)
        return
    for row in iter_rows(source.volumes_dir, columns=STACK_COLUMNS, batch_size=2):
        if row["rotated_90"]:
            continue
        row["pixels"] = decode_array(row["pixels"], row["shape"], row["dtype"])
        yield row


def count_stacks(source: Source) -> tuple[int, int]:
    """(stacks, 2D images) prediction will process, for the progress bar."""
    if source.kind == "nifti":
        return 1, 0
    n = images = 0
    for row in iter_rows(source.volumes_dir, columns=["rotated_90", "shape"], batch_size=256):
        if not row["rotated_90"]:
            n += 1
            images += int(row["shape"][0]) * int(row["shape"][1])
    return n, images


def nifti_stack(path: Path) -> dict[str, Any]:
    """One stack from a 4D NIfTI indexed (col, row, slice, frame), like ``export nifti`` writes."""
    import nibabel as nib

    try:
        img = nib.load(str(path))
        data = np.asarray(img.dataobj)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is a user error
        raise InputError(f"{path}: cannot read NIfTI ({type(exc).__name__}: {exc})") from None
    if data.ndim != 4 or data.shape[3] < 2:
        raise InputError(f"{path}: expected a 4D cine NIfTI (col, row, slice, frame) with at least "
                         f"2 frames, got shape {data.shape}")
    pixels = np.ascontiguousarray(data.transpose(3, 2, 1, 0))   # (i, j, k, t) -> [t, k, j, i]
    affine = LPS_TO_RAS @ np.asarray(img.affine, float)       # the diagonal flip is its own inverse
    zooms = img.header.get_zooms()
    dt = float(zooms[3]) if len(zooms) > 3 and zooms[3] > 0 else 1.0
    if img.header.get_xyzt_units()[1] == "sec":
        dt *= 1000.0
    stem = path.name.removesuffix(".gz").removesuffix(".nii")
    return {"stack_id": stem, "subject_id": stem, "patient_id": stem, "split": "",
            "rotated_90": False, "shape": list(pixels.shape), "dtype": pixels.dtype.str,
            "pixels": pixels,
            "pixel_spacing_mm": [float(np.linalg.norm(affine[:3, 1])),
                                 float(np.linalg.norm(affine[:3, 0]))],
            "slice_spacing_mm": float(np.linalg.norm(affine[:3, 2])),
            "frame_times_ms": [t * dt for t in range(pixels.shape[0])],
            "affine": affine.reshape(-1).tolist(), "scale_factor": 1.0}
