"""Every transfer syntax, and enhanced multi-frame MR, ingest to the stacks of the original.

Each variant is written from one generated cohort (explicit VR little endian, one file per
image) and must give the same stacks: bit-identical pixels, affine within 0.05 mm.
"""

from __future__ import annotations

import pydicom
import pytest

from hpc_seg.cardiac.synth.reencode import TRANSFER_SYNTAXES
from tests.cardiac.ingest.variant_cohort import (assert_same_stacks, ingest_tables, stacks,
                                                 variant)


def _syntax_of_images(root) -> set[str]:
    return {pydicom.dcmread(p, stop_before_pixels=True).file_meta.TransferSyntaxUID
            for p in root.rglob("IM-*.dcm")}


@pytest.mark.parametrize("syntax", [s for s in TRANSFER_SYNTAXES if s != "explicit"])
def test_each_transfer_syntax_gives_the_same_stacks(original, syntax, tmp_path):
    root, want = original
    src = variant(root, tmp_path / "src", transfer_syntax=syntax)
    assert _syntax_of_images(src) == {TRANSFER_SYNTAXES[syntax]}       # really re-encoded
    t = ingest_tables(src, tmp_path / "out")
    assert_same_stacks(stacks(t["volumes"]), want)
    assert not t["issues"]["problem"].isin(["decode_error", "not_dicom", "missing_tags"]).any()


@pytest.mark.parametrize("syntax", ["explicit", "jpeg-ls"])
def test_enhanced_multiframe_gives_the_same_stacks(original, syntax, tmp_path):
    root, want = original
    src = variant(root, tmp_path / "src", transfer_syntax=syntax, multiframe=True)
    files = list(src.rglob("IM-*.dcm"))
    assert files and all(int(pydicom.dcmread(p, stop_before_pixels=True).NumberOfFrames) > 1
                         for p in files)
    t = ingest_tables(src, tmp_path / "out")
    assert_same_stacks(stacks(t["volumes"]), want)
    assert set(t["patients"]["n_used"]) == {6}          # six series files, one per slice
