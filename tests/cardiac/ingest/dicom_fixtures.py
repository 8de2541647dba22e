"""Tiny hand-made DICOM cine series for ingest unit tests (independent of the cohort generator).

Pixel values are a linear function of the LPS position of the pixel centre plus 100 x frame,
so tests can check where every voxel went, and linear resampling reproduces them exactly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid


def value_at(pos: np.ndarray, frame: int) -> np.ndarray:
    """The fixture's pixel value at LPS position(s) ``pos[..., 3]`` in ``frame``."""
    return 1000.0 + 3.0 * pos[..., 0] + 7.0 * pos[..., 1] + 0.5 * pos[..., 2] + 100.0 * frame


def pixel_positions(ipp, iop, spacing, rows: int, cols: int) -> np.ndarray:
    iop = np.asarray(iop, float)
    jj, ii = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    return (np.asarray(ipp, float) + ii[..., None] * spacing[1] * iop[:3]
            + jj[..., None] * spacing[0] * iop[3:])


def mr_dataset() -> pydicom.Dataset:
    """An empty MR Image Storage dataset with its file meta (a new SOPInstanceUID, explicit VR
    little endian): the tests add the elements they need."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, meta.MediaStorageSOPInstanceUID
    return ds


def write_image(path: Path, *, pid: str = "1", series_number: int = 1, series_uid: str,
                ipp, iop=(1, 0, 0, 0, 1, 0), spacing=(1.5, 1.5), pixels: np.ndarray,
                trigger_ms: float = 0.0, instance: int = 1, series_time: str = "100000",
                with_pixels: bool = True) -> str:
    """Write one MR image; returns its SOPInstanceUID."""
    ds = mr_dataset()
    sop = ds.SOPInstanceUID
    ds.PatientID, ds.PatientAge, ds.PatientSex = pid, "045Y", "F"
    ds.StudyInstanceUID = "1.2.3.4"
    ds.SeriesInstanceUID, ds.SeriesNumber, ds.SeriesTime = series_uid, series_number, series_time
    ds.AcquisitionTime = series_time
    ds.FrameOfReferenceUID = "1.2.3.5"
    ds.Modality = "MR"
    ds.InstanceNumber = instance
    ds.ImagePositionPatient = [round(float(v), 6) for v in ipp]
    ds.ImageOrientationPatient = [round(float(v), 8) for v in iop]
    ds.PixelSpacing = [float(spacing[0]), float(spacing[1])]
    ds.SliceThickness = 8.0
    ds.TriggerTime = float(trigger_ms)
    ds.MagneticFieldStrength, ds.Manufacturer = 1.5, "ACME"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    if with_pixels:
        ds.PixelData = np.ascontiguousarray(pixels, dtype="<u2").tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return sop


def write_slice(root: Path, rel_dir: str, *, pid: str, series: int, ipp, iop, spacing,
                rows: int, cols: int, n_frames: int, series_time: str = "100000",
                masks: dict | None = None) -> dict[str, dict]:
    """One series at one position (``n_frames`` frames, 30 ms apart); returns {file: info}."""
    uid = generate_uid()
    pos = pixel_positions(ipp, iop, spacing, rows, cols)
    info = {}
    for t in range(n_frames):
        px = np.rint(value_at(pos, t)).astype(np.uint16)
        rel = f"{rel_dir}/IM-{series:04d}-{t + 1:04d}.dcm"
        sop = write_image(root / rel, pid=pid, series_number=series, series_uid=uid, ipp=ipp,
                          iop=iop, spacing=spacing, pixels=px, trigger_ms=t * 30.0,
                          instance=t + 1, series_time=series_time)
        if masks is not None:
            masks[sop] = ((px // 7) % 4).astype(np.uint8)
        info[rel] = {"frame": t, "ipp": np.asarray(ipp, float), "iop": np.asarray(iop, float),
                     "spacing": tuple(spacing), "rows": rows, "cols": cols, "pixels": px,
                     "sop": sop, "series": series}
    return info


def write_stack(root: Path, pid: str = "1", split: str = "train", *, n_slices: int = 4,
                n_frames: int = 3, rows: int = 8, cols: int = 8, spacing=(1.5, 1.5),
                slice_gap: float = 8.0, origin=(-10.0, -20.0, 30.0),
                iop=(1, 0, 0, 0, 1, 0), first_series: int = 1, series_time: str = "100000",
                positions: list[float] | None = None, masks: dict | None = None,
                ) -> dict[str, dict]:
    """One series per slice position in ``sax_<series>`` folders; returns {file: info}."""
    info = {}
    iop = np.asarray(iop, float)
    normal = np.cross(iop[:3], iop[3:])
    positions = positions if positions is not None else [k * slice_gap for k in range(n_slices)]
    for k, pos in enumerate(positions):
        series = first_series + k
        ipp = np.asarray(origin, float) + pos * normal
        info.update(write_slice(root, f"{split}/{pid}/study/sax_{series}", pid=pid, series=series,
                                ipp=ipp, iop=iop, spacing=spacing, rows=rows, cols=cols,
                                n_frames=n_frames, series_time=series_time, masks=masks))
    return info


def rotated_slice_geometry(ipp, iop, spacing, rows: int, cols: int):
    """The same plane seen through ``np.rot90``: (ipp, iop, spacing, rows, cols) of the rotation.

    rot90 maps new pixel (j', i') to old (row i', col C-1-j'), so the new first pixel is old
    (0, C-1), the new row direction is the old column direction and the new column direction
    is minus the old row direction; the normal is unchanged.
    """
    iop = np.asarray(iop, float)
    r, c = iop[:3], iop[3:]
    new_ipp = np.asarray(ipp, float) + (cols - 1) * spacing[1] * r
    return new_ipp, np.concatenate([c, -r]), (spacing[1], spacing[0]), cols, rows


def resampled_slice_geometry(ipp, iop, spacing, rows: int, cols: int, new_spacing):
    """Same field of view (pixel edges) at another pixel spacing."""
    iop = np.asarray(iop, float)
    r, c = iop[:3], iop[3:]
    new_rows = round(rows * spacing[0] / new_spacing[0])
    new_cols = round(cols * spacing[1] / new_spacing[1])
    centre = np.asarray(ipp, float) + (cols - 1) / 2 * spacing[1] * r + (rows - 1) / 2 * spacing[0] * c
    new_ipp = centre - (new_cols - 1) / 2 * new_spacing[1] * r - (new_rows - 1) / 2 * new_spacing[0] * c
    return new_ipp, iop, tuple(new_spacing), new_rows, new_cols
