"""Generator output variants: layouts, transfer syntaxes, multi-frame; the JPEG lossless encoder."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom import uid as U

from hpc_seg.cardiac.synth.jpeg_lossless import encode_frame
from hpc_seg.cli import main


@pytest.mark.parametrize("shape,high", [((64, 52), 65536), ((7, 5), 2000), ((3, 3), 1)])
def test_jpeg_lossless_round_trips_through_libjpeg(shape, high):
    from pylibjpeg import decode

    rng = np.random.default_rng(0)
    img = rng.integers(0, high, shape).astype(np.uint16)
    if high == 65536:                 # the largest differences, incl. +/-32768 (SSSS 16)
        img[0, :4] = [0, 65535, 0, 32768]
    assert np.array_equal(decode(encode_frame(img, 16)), img)


def test_jpeg_lossless_refuses_what_it_does_not_encode():
    with pytest.raises(ValueError, match="uint16"):
        encode_frame(np.zeros((4, 4), np.uint8), 8)


def test_synth_cine_cli_writes_a_multiframe_rle_scanner_export(tmp_path, capsys):
    out = tmp_path / "export"
    assert main(["synth", "cine", str(out), "--patients", "1", "--n-frames", "4",
                 "--max-matrix", "32", "--no-random-quirks", "--workers", "1",
                 "--layout", "export", "--transfer-syntax", "rle", "--multiframe"]) == 0
    assert "export layout, rle, multi-frame" in capsys.readouterr().out
    dicomdir = pydicom.dcmread(out / "DICOMDIR")
    images = [p for p in out.rglob("IM*") if p.is_file()]
    assert len(dicomdir.DirectoryRecordSequence) > len(images) > 0
    assert not any("sax" in p.relative_to(out).as_posix() for p in out.rglob("*"))
    kinds = {(str(ds.SOPClassUID), str(ds.file_meta.TransferSyntaxUID), int(ds.get("NumberOfFrames", 1)) > 1)
             for ds in (pydicom.dcmread(p, stop_before_pixels=True) for p in images)}
    assert (U.EnhancedMRImageStorage, U.RLELossless, True) in kinds     # the cines
    assert (U.MRImageStorage, U.RLELossless, False) in kinds            # the localisers
    assert (out / "truth.csv").is_file() and (out / "masks" / "1.npz").is_file()
    assert not (tmp_path / ".export.project").exists()                  # staging removed
    assert main(["synth", "cine", str(out), "--patients", "1", "--layout", "flat"]) == 2


def test_synth_cine_cli_writes_a_vendors_exam(tmp_path, capsys):
    out = tmp_path / "exam"
    assert main(["synth", "cine", str(out), "--patients", "1", "--n-frames", "4",
                 "--max-matrix", "32", "--no-random-quirks", "--workers", "1",
                 "--layout", "export", "--vendor", "ge", "--sax-series", "per-slice"]) == 0
    headers = [pydicom.dcmread(p, stop_before_pixels=True) for p in out.glob("PT*/**/*")
               if p.is_file()]
    makers = {str(ds.get("Manufacturer", "")) for ds in headers if ds.Modality == "MR"}
    assert makers == {"GE MEDICAL SYSTEMS"}
    kinds = {str(ds.SOPClassUID) for ds in headers}
    assert {U.MRImageStorage, U.SecondaryCaptureImageStorage, U.EncapsulatedPDFStorage} <= kinds
    sax = {str(ds.SeriesInstanceUID) for ds in headers
           if str(ds.get("SeriesDescription", "")).startswith("CINE_segmented_SAX")}
    assert len(sax) >= 6                       # one series per slice, as asked
    assert {str(ds.SeriesDescription) for ds in headers} >= {
        "RT_cine_SAX", "PERF_SR_3slices", "flow_150_AoV", "MOLLI_5(3)3_SAX_mid",
        "MOLLI_5(3)3_SAX_mid_T1MAP", "LGE_PSIR_SAX", "Report screenshot", "Exam protocol"}
    capsys.readouterr()
    assert main(["synth", "cine", str(tmp_path / "flat"), "--patients", "1", "--layout", "flat",
                 "--vendor", "ge"]) == 2
    assert "need layout export" in capsys.readouterr().err
