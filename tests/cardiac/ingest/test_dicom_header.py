"""The direct header parser (``fast_header``) gives exactly what the pydicom path gives.

``read_frame`` parses the usual layout itself and hands anything else to pydicom; a test
per side: every file of a quirky synthetic cohort reads the same both ways, and the layouts
the direct parser must not take (other character sets, sequences of undefined length,
implicit VR, trailing bytes) are left to pydicom and still read correctly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import ImplicitVRLittleEndian

from hpc_seg.cardiac.dicom import read as dicom_read
from hpc_seg.cardiac.dicom.header import fast_header
from hpc_seg.cardiac.dicom.read import read_frame
from hpc_seg.cardiac.synth.cohort import generate_cine_cohort
from hpc_seg.cardiac.synth.config import QUIRKS, CineSynthConfig
from tests.cardiac.ingest.dicom_fixtures import write_image
from tests.cardiac.synth.helpers import TINY


def _read_with_pydicom(monkeypatch, path: Path, rel: str):
    with monkeypatch.context() as m:
        m.setattr(dicom_read, "_read_fast", lambda *args: None)
        return read_frame(path, rel)


def _assert_same(a, b) -> None:
    (fa, skip_a, meta_a), (fb, skip_b, meta_b) = a, b
    assert meta_a == meta_b
    assert skip_a == skip_b
    assert (fa is None) == (fb is None)
    if fa is not None:
        for name in fa.__slots__:
            va, vb = getattr(fa, name), getattr(fb, name)
            if isinstance(va, np.ndarray):
                assert va.dtype == vb.dtype and np.array_equal(va, vb), name
            else:
                assert va == vb, name


@pytest.fixture(scope="module")
def quirky_files(tmp_path_factory) -> tuple[Path, list[Path]]:
    root = tmp_path_factory.mktemp("dicom_read") / "cohort"
    cfg = CineSynthConfig(no_random_quirks=True,
                          force_quirks={q: [i + 1] for i, q in enumerate(QUIRKS)}, **TINY)
    generate_cine_cohort(root, len(QUIRKS), 3, cfg)
    return root, sorted(root.rglob("*.dcm"))


def test_every_cohort_file_reads_the_same_as_through_pydicom(quirky_files, monkeypatch):
    root, files = quirky_files
    parsed_directly = 0
    for path in files:
        rel = path.relative_to(root).as_posix()
        _assert_same(read_frame(path, rel), _read_with_pydicom(monkeypatch, path, rel))
        parsed_directly += fast_header(path.read_bytes()) is not None
    # the comparison means something only if most files took the direct parser
    assert parsed_directly > 0.9 * len(files)


def test_broken_files_keep_pydicoms_reasons(quirky_files):
    root, files = quirky_files
    reasons = set()
    for path in files:
        rel = path.relative_to(root).as_posix()
        _, skip, _ = read_frame(path, rel)
        if skip is not None:
            reasons.add(skip.reason)
    assert {"truncated", "not_dicom", "no_pixel_data"} <= reasons


def _image(path: Path, **kwargs) -> pydicom.Dataset:
    pixels = np.arange(12 * 10, dtype=np.uint16).reshape(12, 10)
    write_image(path, series_uid="1.2.3.9", ipp=(0, 0, 0), pixels=pixels, **kwargs)
    return pydicom.dcmread(path)


def _rewrite(ds: pydicom.Dataset, path: Path, **kwargs) -> None:
    ds.save_as(path, enforce_file_format=True, **kwargs)


@pytest.mark.parametrize("variant", ["latin1_name", "undefined_length_sequence", "implicit_vr"])
def test_other_layouts_are_left_to_pydicom_and_still_read(tmp_path, variant):
    path = tmp_path / "im.dcm"
    ds = _image(path)
    if variant == "latin1_name":
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.PatientName = "Müller^Jürgen"
        _rewrite(ds, path)
    elif variant == "undefined_length_sequence":
        item = Dataset()
        item.CodeValue = "X"
        ds.ProcedureCodeSequence = Sequence([item])
        ds["ProcedureCodeSequence"].is_undefined_length = True
        _rewrite(ds, path)
    elif variant == "implicit_vr":
        ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
        _rewrite(ds, path, implicit_vr=True, little_endian=True)
    assert fast_header(path.read_bytes()) is None
    frame, skip, meta = read_frame(path, "im.dcm")
    assert skip is None and frame.pixels.shape == (12, 10)
    assert int(frame.pixels[-1, -1]) == 119
    if variant == "latin1_name":
        assert ("im.dcm", "00100010", "PatientName", "PN", "Müller^Jürgen") in meta


def test_header_only_file_with_trailing_bytes_is_left_to_pydicom(tmp_path, monkeypatch):
    path = tmp_path / "im.dcm"
    write_image(path, series_uid="1.2.3.9", ipp=(0, 0, 0), pixels=np.zeros((4, 4), np.uint16),
                with_pixels=False)
    path.write_bytes(path.read_bytes() + b"\x01\x02\x03")
    assert fast_header(path.read_bytes()) is None
    direct, through_pydicom = read_frame(path, "im.dcm"), _read_with_pydicom(monkeypatch, path, "im.dcm")
    _assert_same(direct, through_pydicom)
    assert direct[1] is not None


def test_padded_multi_values_are_trimmed_like_pydicom(tmp_path, monkeypatch):
    path = tmp_path / "im.dcm"
    _image(path)
    raw = path.read_bytes()
    # "0.0\0.0\0.0" → "0.0 \0.0\0.0 " keeps the element length even; pydicom strips each value
    old = b"0.0\\0.0\\0.0"
    assert raw.count(old) >= 1
    at = raw.index(old)
    length = int.from_bytes(raw[at - 2:at], "little")
    assert length == len(old) + 1          # padded to even by one trailing space
    padded = raw[:at - 2] + (length + 2).to_bytes(2, "little") + b"0.0 \\0.0\\0.0  " \
        + raw[at + length:]
    path.write_bytes(padded)
    assert fast_header(padded) is not None
    direct = read_frame(path, "im.dcm")
    _assert_same(direct, _read_with_pydicom(monkeypatch, path, "im.dcm"))
    # both paths share the text conversion: check it against pydicom's own value parsing
    ipp = pydicom.dcmread(path).ImagePositionPatient
    expected = "\\".join(str(v) for v in ipp)
    assert expected == "0.0\\0.0\\0.0"
    assert ("im.dcm", "00200032", "ImagePositionPatient", "DS", expected) in direct[2]
