"""DICOM writing for the synthetic cine cohort: geometry in LPS, MR Image Storage files, corruptions.

Geometry convention (DICOM LPS): pixel (row r, col c) lies at
``IPP + c*PixelSpacing[1]*rowdir + r*PixelSpacing[0]*coldir`` with IOP = [rowdir, coldir]; the
slice normal is ``cross(rowdir, coldir)`` and the slice position ``dot(IPP, normal)``. Values are
rounded to what the DS strings hold *before* anything (the manifest included) is derived from them,
so a reader recomputing positions from the headers gets the manifest's numbers.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage

from hpc_seg.cardiac.synth.render import Plane


@dataclass(frozen=True)
class Geometry:
    """The in-plane geometry of one image as written to the header."""

    rows: int
    cols: int
    ps_row: float
    ps_col: float
    ipp: tuple[float, float, float]
    iop: tuple[float, float, float, float, float, float]

    @property
    def normal(self) -> np.ndarray:
        n = np.cross(self.iop[:3], self.iop[3:])
        return n / np.linalg.norm(n)

    @property
    def position(self) -> float:
        """dot(IPP, normal): the slice position along the stack normal."""
        return float(np.dot(self.ipp, self.normal))

    def rounded(self) -> "Geometry":
        return replace(self, ps_row=round(self.ps_row, 5), ps_col=round(self.ps_col, 5),
                       ipp=tuple(round(float(v), 4) for v in self.ipp),
                       iop=tuple(round(float(v), 6) for v in self.iop))


def plane_geometry(plane: Plane, base_lps: np.ndarray, axes_lps: np.ndarray) -> Geometry:
    """Header geometry of ``plane``; ``axes_lps`` holds the heart-frame axes as columns."""
    rowdir = plane.col_sign * axes_lps[:, plane.col_axis]
    coldir = plane.row_sign * axes_lps[:, plane.row_axis]
    ipp = base_lps + axes_lps @ np.asarray(plane.origin)
    return Geometry(rows=plane.rows, cols=plane.cols, ps_row=plane.ps_row, ps_col=plane.ps_col,
                    ipp=tuple(ipp), iop=tuple(rowdir) + tuple(coldir)).rounded()


def rotate90(geom: Geometry) -> Geometry:
    """Geometry of ``np.rot90(pixels)`` (counter-clockwise): same normal, swapped matrix.

    ``rot90(A)[i, j] = A[j, C-1-i]``, so the new row direction is the old column direction, the new
    column direction is minus the old row direction, and the new first pixel is the old (0, C-1).
    """
    rowdir, coldir = np.asarray(geom.iop[:3]), np.asarray(geom.iop[3:])
    ipp = np.asarray(geom.ipp) + (geom.cols - 1) * geom.ps_col * rowdir
    return Geometry(rows=geom.cols, cols=geom.rows, ps_row=geom.ps_col, ps_col=geom.ps_row,
                    ipp=tuple(ipp), iop=tuple(coldir) + tuple(-rowdir)).rounded()


def make_uid(*parts: object) -> str:
    """A deterministic UID ``2.25.<128-bit int>`` (the UUID-derived OID arc) from ``parts``.

    (pydicom's ``generate_uid(prefix=None)`` ignores its entropy sources and is random.)
    """
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return f"2.25.{int.from_bytes(digest[:16], 'big')}"


def _ds(value: float) -> str:
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


class SeriesWriter:
    """Writes the images of one series; the header template is built once and mutated per file."""

    def __init__(self, patient: dict, series: dict):
        ds = Dataset()
        ds.SOPClassUID = MRImageStorage
        ds.Modality = "MR"
        for key, value in {**patient, **series}.items():
            setattr(ds, key, value)
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated = 16
        # Variety cohorts carry their vendor's depth (12 or 16 bits); the shipped ones say 16.
        ds.BitsStored = int(patient.get("BitsStored", 16))
        ds.HighBit = ds.BitsStored - 1
        ds.PixelRepresentation = 0
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = MRImageStorage
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        self._ds = ds

    def write(self, path: Path, *, geom: Geometry, sop_uid: str, instance: int,
              trigger_time_ms: float, pixels: np.ndarray | None) -> None:
        """Write one image; ``pixels=None`` writes the full header without PixelData."""
        ds = self._ds
        ds.SOPInstanceUID = sop_uid
        ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
        ds.InstanceNumber = instance
        ds.TriggerTime = _ds(trigger_time_ms)
        ds.Rows, ds.Columns = geom.rows, geom.cols
        ds.PixelSpacing = [_ds(geom.ps_row), _ds(geom.ps_col)]
        ds.ImagePositionPatient = [_ds(v) for v in geom.ipp]
        ds.ImageOrientationPatient = [_ds(v) for v in geom.iop]
        ds.SliceLocation = _ds(round(geom.position, 4))
        if pixels is None:
            if "PixelData" in ds:
                del ds.PixelData
        else:
            if pixels.shape != (geom.rows, geom.cols) or pixels.dtype != np.uint16:
                raise ValueError(f"{path}: pixels {pixels.shape} {pixels.dtype} do not match "
                                 f"the header {geom.rows}x{geom.cols} uint16")
            ds.PixelData = np.ascontiguousarray(pixels).astype("<u2").tobytes()
            ds.LargestImagePixelValue = int(pixels.max())
        ds.save_as(path, enforce_file_format=True)


def truncate_pixels(path: Path, pixel_bytes: int) -> None:
    """Cut ``path`` in the middle of its pixel data: the header parses, ``pixel_array`` fails."""
    size = path.stat().st_size
    os.truncate(path, size - pixel_bytes // 2)


def write_not_dicom(path: Path, rng: np.random.Generator) -> None:
    """A file with a ``.dcm`` name that is not DICOM (no preamble, no DICM prefix)."""
    junk = b"scanner export log\n" + rng.integers(0, 256, size=1500, dtype=np.uint8).tobytes()
    path.write_bytes(junk)
