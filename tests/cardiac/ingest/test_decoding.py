"""Decoding that does not give up early, and says what it saw: the next decoder plugin is tried
when one fails, a colour image is one clear ``colour`` skip, and what pydicom logs or warns about a
file comes back as messages instead of reaching the console."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pydicom
from pydicom.uid import JPEGLSLossless, RLELossless

from hpc_seg.cardiac.dicom import pixels as dicom_pixels
from hpc_seg.cardiac.dicom.read import read_frames
from tests.cardiac.ingest.dicom_fixtures import write_image

PX = (np.arange(16 * 12, dtype=np.uint16).reshape(16, 12) * 37) % 4000


def _compressed(path, syntax) -> None:
    write_image(path, series_uid="1.2.3", ipp=(0, 0, 0), pixels=PX)
    ds = pydicom.dcmread(path)
    ds.compress(syntax, PX, generate_instance_uid=False)
    ds.save_as(path, enforce_file_format=True)


def test_a_failing_decoder_plugin_hands_over_to_the_next(tmp_path, monkeypatch):
    path = tmp_path / "jls.dcm"
    _compressed(path, JPEGLSLossless)
    assert dicom_pixels._plugins(JPEGLSLossless)[0] == "pyjpegls"      # the fast one first
    real = dicom_pixels.pixel_array
    tried = []

    def refuse_charls(ds, decoding_plugin=""):
        tried.append(decoding_plugin)
        if decoding_plugin == "pyjpegls":
            raise RuntimeError("Decoding error: Invalid JPEG-LS stream")
        return real(ds, decoding_plugin=decoding_plugin)

    monkeypatch.setattr(dicom_pixels, "pixel_array", refuse_charls)
    (frame,), skip, _meta, _log = read_frames(path, "jls.dcm")
    assert skip is None and np.array_equal(frame.pixels, PX)
    assert tried == ["pyjpegls", "pylibjpeg"]

    def refuse_all(ds, decoding_plugin=""):
        raise RuntimeError(f"{decoding_plugin} says no")

    monkeypatch.setattr(dicom_pixels, "pixel_array", refuse_all)
    _frames, skip, _meta, _log = read_frames(path, "jls.dcm")
    assert skip.reason == "decode_error"
    assert "pyjpegls: pyjpegls says no" in skip.detail and "pylibjpeg: pylibjpeg says no" in skip.detail


def test_a_colour_image_is_one_clear_skip(tmp_path):
    path = tmp_path / "rgb.dcm"
    write_image(path, series_uid="1.2.3", ipp=(0, 0, 0), pixels=PX)
    ds = pydicom.dcmread(path)
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    ds.PixelData = np.zeros((16, 12, 3), np.uint8).tobytes()
    ds.save_as(path, enforce_file_format=True)
    frames, skip, meta, _log = read_frames(path, "rgb.dcm")
    assert frames == [] and skip.reason == "colour" and "RGB, 3 samples per pixel" in skip.detail
    assert meta                     # the header is still documented


def test_pydicoms_log_and_warnings_come_back_as_messages(tmp_path, capsys, caplog):
    path = tmp_path / "cut.dcm"
    _compressed(path, RLELossless)
    path.write_bytes(path.read_bytes()[:-40])        # cut inside the encapsulated pixels
    caplog.set_level(logging.DEBUG)
    with warnings.catch_warnings(record=True) as escaped:
        warnings.simplefilter("always")
        frames, skip, _meta, logged = read_frames(path, "cut.dcm")
    assert escaped == [], [str(w.message) for w in escaped]
    assert frames == [] and skip.reason == "truncated"
    assert any("End of file reached before delimiter" in line for line in logged)
    assert len(logged) == len(set(logged))          # logged and warned: kept once
    assert not [r for r in caplog.records if r.name.startswith("pydicom")]
    assert capsys.readouterr().err == ""
