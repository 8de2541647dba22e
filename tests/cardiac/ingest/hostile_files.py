"""Small files that claim to be huge: what the decoded-size budget must refuse before allocating.

- :func:`rle_claiming`: a real RLE Lossless image (a few hundred bytes) whose Rows/Columns claim
  ``rows x cols``; a decoder allocates the claimed size before it finds the data short.
- :func:`deflate_bomb`: a Deflated Explicit VR Little Endian file whose dataset inflates to about
  ``inflated_bytes`` (zeros compress ~1000:1); pydicom inflates the whole dataset in memory before
  it parses a single element.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import FileMetaDataset
from pydicom.uid import (DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian, RLELossless,
                         generate_uid)

from tests.cardiac.ingest.dicom_fixtures import mr_dataset


def _image(rows: int = 16, cols: int = 16) -> pydicom.Dataset:
    ds = mr_dataset()
    ds.PatientID, ds.Modality = "1", "MR"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.SeriesNumber, ds.InstanceNumber = 1, 1
    ds.ImagePositionPatient = [0.0, 0.0, 0.0]
    ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    ds.PixelSpacing = [1.0, 1.0]
    ds.SliceThickness, ds.TriggerTime = 8.0, 0.0
    ds.Rows, ds.Columns = rows, cols
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = np.arange(rows * cols, dtype="<u2").tobytes()
    return ds


def rle_claiming(path: Path, rows: int, cols: int) -> Path:
    """An RLE image of 16 x 16 real pixels whose header claims ``rows x cols``."""
    ds = _image()
    ds.compress(RLELossless)
    ds.Rows, ds.Columns = rows, cols
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def _meta_end(raw: bytes) -> int:
    """Offset after the file meta group of a Part-10 file."""
    pos = 132
    while raw[pos:pos + 2] == b"\x02\x00":
        if raw[pos + 4:pos + 6] in (b"OB", b"OW", b"UN", b"SQ", b"UT", b"UC"):
            pos += 12 + struct.unpack_from("<I", raw, pos + 8)[0]
        else:
            pos += 8 + struct.unpack_from("<H", raw, pos + 6)[0]
    return pos


def deflate_bomb(path: Path, inflated_bytes: int) -> Path:
    """A deflated file whose PixelData (zeros) inflates to ``inflated_bytes``; the header says a
    square 16-bit image of that size, so only the inflated size gives it away."""
    side = int((inflated_bytes // 2) ** 0.5)
    ds = _image(side, side)
    del ds.PixelData
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    path.parent.mkdir(parents=True, exist_ok=True)
    # the file meta group (never deflated) as pydicom writes it, then the deflated dataset
    head = Path(str(path) + ".head")
    ds.save_as(head, enforce_file_format=True)
    raw = head.read_bytes()
    head.unlink()
    body = pydicom.Dataset(ds)
    body.file_meta = FileMetaDataset(ds.file_meta)
    body.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    tmp = Path(str(path) + ".body")
    body.save_as(tmp, enforce_file_format=True)
    plain = tmp.read_bytes()
    tmp.unlink()
    n = side * side * 2
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    with open(path, "wb") as fh:
        fh.write(raw[:_meta_end(raw)])
        fh.write(comp.compress(plain[_meta_end(plain):]))
        fh.write(comp.compress(struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OW", 0, n)))
        chunk = bytes(1 << 20)
        left = n
        while left:
            step = min(left, len(chunk))
            fh.write(comp.compress(chunk[:step]))
            left -= step
        fh.write(comp.flush())
    return path
