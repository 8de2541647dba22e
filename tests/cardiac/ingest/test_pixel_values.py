"""Stored values → pixels: rescale slope/intercept, MONOCHROME1 and signed data are honoured and
recorded; DICOMDIR files and objects without an image are recognised."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian

from hpc_seg.cardiac.dicom.read import read_frames
from tests.cardiac.ingest.dicom_fixtures import write_image


def _image(path, **header):
    px = np.arange(12, dtype=np.uint16).reshape(3, 4) * 100
    write_image(path, series_uid="1.2.3", ipp=(0, 0, 0), pixels=px)
    ds = pydicom.dcmread(path)
    for key, value in header.items():
        setattr(ds, key, value)
    if header.get("PixelRepresentation") == 1:
        ds.PixelData = (px.astype(np.int16) - 500).astype("<i2").tobytes()
    ds.save_as(path, enforce_file_format=True)
    return px


@pytest.mark.parametrize("header,expect,note", [
    ({}, lambda px: px, ""),
    ({"RescaleSlope": "2", "RescaleIntercept": "-1000"},
     lambda px: px.astype(np.float32) * 2 - 1000,
     "rescaled: slope 2, intercept -1000 (float32)"),
    ({"PhotometricInterpretation": "MONOCHROME1", "BitsStored": 12, "HighBit": 11},
     lambda px: 4095 - px, "MONOCHROME1 inverted"),
    ({"PixelRepresentation": 1}, lambda px: px.astype(np.int16) - 500, "signed pixels (int16)"),
])
def test_stored_values_become_pixels_as_the_header_says(tmp_path, header, expect, note):
    px = _image(tmp_path / "a.dcm", **header)
    (frame,), skip, _meta, _log = read_frames(tmp_path / "a.dcm", "a.dcm")
    want = expect(px)
    assert skip is None and frame.pixels.dtype == want.dtype
    assert np.array_equal(frame.pixels, want) and frame.pixel_note == note


def test_a_dicomdir_and_an_object_without_image_are_recognised(tmp_path):
    from pydicom.fileset import FileSet

    write_image(tmp_path / "img" / "a.dcm", series_uid="1.2.3", ipp=(0, 0, 0),
                pixels=np.zeros((3, 4), np.uint16))
    ds = pydicom.dcmread(tmp_path / "img" / "a.dcm")
    ds.StudyDate, ds.StudyTime, ds.StudyID = "20200101", "120000", "1"
    fs = FileSet()
    fs.add(ds)
    fs.write(tmp_path / "set")
    frames, skip, _, _ = read_frames(tmp_path / "set" / "DICOMDIR", "DICOMDIR")
    assert frames == [] and skip.reason == "dicomdir"
    sr = pydicom.Dataset()
    sr.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.11"       # Basic Text SR
    sr.SOPInstanceUID, sr.Modality = "1.2.3.9", "SR"
    sr.file_meta = pydicom.dataset.FileMetaDataset()
    sr.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    sr.file_meta.MediaStorageSOPClassUID = sr.SOPClassUID
    sr.save_as(tmp_path / "sr.dcm", enforce_file_format=True)
    frames, skip, _, _ = read_frames(tmp_path / "sr.dcm", "sr.dcm")
    assert frames == [] and skip.reason == "not_image"


@pytest.mark.parametrize("syntax", ["jpeg-ls", "rle", "deflate"])
def test_a_cut_compressed_file_is_a_decode_problem_with_its_header_kept(tmp_path, syntax):
    from hpc_seg.cardiac.synth.reencode import encode_as, save

    px = (np.arange(64 * 48, dtype=np.uint16).reshape(64, 48) * 7) % 4000
    write_image(tmp_path / "a.dcm", series_uid="1.2.3", ipp=(0, 0, 0), pixels=px)
    ds = pydicom.dcmread(tmp_path / "a.dcm")
    encode_as(ds, px, syntax)
    save(ds, tmp_path / "b.dcm")
    (frame,), skip, _, _ = read_frames(tmp_path / "b.dcm", "b.dcm")
    assert skip is None and np.array_equal(frame.pixels, px)
    data = (tmp_path / "b.dcm").read_bytes()
    (tmp_path / "b.dcm").write_bytes(data[: len(data) - 200])
    frames, skip, meta, _ = read_frames(tmp_path / "b.dcm", "b.dcm")
    assert frames == [] and skip.reason in ("truncated", "decode_error", "not_dicom")
    if syntax != "deflate":        # a cut deflate stream cannot even be parsed
        assert skip.reason != "not_dicom" and any(m[2] == "PatientID" for m in meta)
