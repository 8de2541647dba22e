"""Export one stack of the ``volumes`` table as NIfTI-1 (nibabel).

Data are written as (X=i col, Y=j row, Z=k slice, T=frame), the affine converted from the
table's LPS convention to NIfTI's RAS (negate the first two rows), ``pixdim[4]`` = the frame
interval in ms (``xyzt_units`` = mm, msec), both qform and sform set (code 1, scanner).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hpc_seg.storage.shards import atomic_write, decode_array, read_shard, shard_files
from hpc_seg.errors import InputError

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def load_stack(volumes_dir: Path, stack_id: str) -> dict:
    """The ``volumes`` row of ``stack_id`` (reads only the shard that holds it)."""
    files = shard_files(volumes_dir)
    if not files:
        raise InputError(f"{volumes_dir}: no volumes shards (run hpc-seg ingest first)")
    known: list[str] = []
    for f in files:
        ids = read_shard(f, columns=["stack_id"]).column(0)
        if stack_id in ids.to_pylist():
            return read_shard(f, filters=[("stack_id", "==", stack_id)]).to_pylist()[0]
        known.extend(ids.to_pylist())
    raise InputError(f"{volumes_dir}: no stack {stack_id!r}; known stacks: "
                     f"{', '.join(sorted(known)[:20])}{' ...' if len(known) > 20 else ''}")


def frame_interval_ms(frame_times: list[float]) -> float:
    """Median step between frame times (1.0 for a single frame)."""
    return float(np.median(np.diff(frame_times))) if len(frame_times) > 1 else 1.0


def stack_to_nifti(row: dict, *, mask: bool = False):
    """Build a ``nibabel.Nifti1Image`` from a ``volumes`` row (pixels, or the mask)."""
    import nibabel as nib

    if mask and row.get("mask") is None:
        raise InputError(f"stack {row['stack_id']}: has no mask (the cohort had no masks/<pid>.npz)")
    data = decode_array(row["mask"], row["shape"], "|u1") if mask else \
        decode_array(row["pixels"], row["shape"], row["dtype"])
    xyzt = np.transpose(data, (3, 2, 1, 0))          # [t, k, j, i] → (i, j, k, t)
    affine_ras = LPS_TO_RAS @ np.asarray(row["affine"], float).reshape(4, 4)
    img = nib.Nifti1Image(np.ascontiguousarray(xyzt), affine_ras)
    img.header.set_xyzt_units("mm", "msec")
    zooms = list(img.header.get_zooms())
    zooms[3] = frame_interval_ms(row["frame_times_ms"])
    img.header.set_zooms(zooms)
    img.set_qform(affine_ras, code=1)
    img.set_sform(affine_ras, code=1)
    return img


def export_nifti(volumes_dir: Path, stack_id: str, out: Path, *, mask: bool = False) -> Path:
    """Write stack ``stack_id`` to ``out`` (``.nii`` or ``.nii.gz``) atomically."""
    import nibabel as nib

    out = Path(out)
    if not out.name.endswith((".nii", ".nii.gz")):
        raise InputError(f"{out}: output name must end in .nii or .nii.gz")
    img = stack_to_nifti(load_stack(Path(volumes_dir), stack_id), mask=mask)
    # nibabel picks the format from the name; the temporary name keeps the .nii(.gz) suffix.
    return atomic_write(out, lambda tmp: nib.save(img, tmp))
