"""``hpc-seg predict``: geometry of the label maps, the DICOM SEG, volumes against ``labels``."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
import torch

from hpc_seg.cardiac.export_nifti import LPS_TO_RAS, export_nifti
from hpc_seg.cardiac.inference.run import PredictConfig, StackTask, predict, run_stack_task
from hpc_seg.cardiac.inference.sources import Source
from hpc_seg.cardiac.labels.build import build_labels
from hpc_seg.cardiac.segment import label_source
from hpc_seg.errors import InputError
from hpc_seg.storage.shards import read_table

CFG = PredictConfig(device="cpu", batch_size=16, workers=1)
IDS = {"stack_id": str, "subject_id": str, "patient_id": str}


def plain_export(cohort: Path, dst: Path) -> Path:
    """Every short-axis DICOM of every patient in ONE flat folder with scanner-style names
    (IM00001...), as a scanner or PACS export gives them: no split, no patient, no sax_ folders."""
    dst.mkdir()
    files = sorted(cohort.glob("*/*/study/sax_*/*.dcm"))
    assert files
    for n, f in enumerate(files, 1):
        shutil.copyfile(f, dst / f"IM{n:05d}")
    return dst


def source_positions(dicom_root: Path, files: pd.DataFrame, slice_k: int) -> tuple[np.ndarray, Path]:
    """LPS position of every pixel of the source image of slice ``slice_k`` at frame 0."""
    rec = files[(files["slice"] == slice_k) & (files["frame"] == 0)].iloc[0]
    ds = pydicom.dcmread(dicom_root / rec["file"], stop_before_pixels=True)
    ipp = np.asarray(ds.ImagePositionPatient, float)
    iop = np.asarray(ds.ImageOrientationPatient, float)
    ps = np.asarray(ds.PixelSpacing, float)
    jj, ii = np.meshgrid(np.arange(ds.Rows), np.arange(ds.Columns), indexing="ij")
    pos = ipp + ii[..., None] * iop[:3] * ps[1] + jj[..., None] * iop[3:] * ps[0]
    return pos, dicom_root / rec["file"]


def check_prediction(out: Path, src: Path, model: Path, tmp_path: Path) -> pd.DataFrame:
    import highdicom as hd
    import nibabel as nib

    summary = pd.read_csv(out / "summary.csv", dtype=IDS)
    files = read_table(out / "ingest" / "files").to_pandas()
    assert len(summary) >= 1
    for sid in summary["stack_id"]:
        sdir = out / sid
        img = nib.load(sdir / "labels.nii.gz")
        lps = LPS_TO_RAS @ img.affine
        data = np.asarray(img.dataobj)
        f = files[files["stack_id"] == sid]
        assert data.shape[2] == f["slice"].nunique()
        for k in range(data.shape[2]):
            # the label map has the curated stack's grid; with no resampling (scale 1) that is
            # the source image's own pixel grid, so every voxel must land on its source pixel
            pos, dcm = source_positions(src, f, k)
            cols, rows = data.shape[0], data.shape[1]
            assert pos.shape[:2] == (rows, cols), dcm
            jj, ii = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
            vox = np.stack([ii, jj, np.full_like(ii, k), np.ones_like(ii)], -1) @ lps.T
            assert np.abs(vox[..., :3] - pos).max() < 0.05, (sid, k, dcm)
        segs = sorted(sdir.glob("seg/*.dcm"))
        assert segs
        referenced = set()
        for seg_path in segs:
            seg = hd.seg.segread(seg_path)     # highdicom's own reading back
            assert seg.number_of_segments == 2
            referenced |= {uid for _, _, uid in seg.get_source_image_uids()}
        expected = {pydicom.dcmread(src / p, stop_before_pixels=True).SOPInstanceUID
                    for p in f.loc[~f["filled"], "file"]}
        assert referenced == expected
        vols = pd.read_csv(sdir / "volumes.csv")
        assert list(vols.columns) == ["frame", "lv_ml", "my_ml"] and len(vols) == data.shape[3]
        assert (sdir / "overlay.png").stat().st_size > 1000
    return summary


def labels_volumes(volumes: Path, model: Path, truth: Path, out: Path) -> pd.DataFrame:
    build_labels(volumes, out, truth, source=label_source(f"model:{model}"))
    lab = read_table(out / "labels").to_pandas()
    return lab.groupby("stack_id")[["edv_ml", "esv_ml"]].first()


def test_predict_dsb2_tree(cohort: Path, model: Path, tmp_path: Path) -> None:
    out = tmp_path / "pred"
    res = predict(model, cohort, out, CFG)
    assert not res.failed
    summary = check_prediction(out, cohort, model, tmp_path)
    assert set(summary["patient_id"].astype(str)) == {"1", "2"}
    lab = labels_volumes(out / "ingest" / "volumes", model, cohort / "truth.csv", tmp_path / "lab")
    s = summary.set_index("stack_id")
    assert (s["edv_ml"] > 0).all() and (s["lv_mass_g"] > 0).all()   # the comparison is not 0 == 0
    assert np.allclose(s["edv_ml"], lab.loc[s.index, "edv_ml"], rtol=0, atol=1e-9)
    assert np.allclose(s["esv_ml"], lab.loc[s.index, "esv_ml"], rtol=0, atol=1e-9)
    assert np.allclose(s["sv_ml"], s["edv_ml"] - s["esv_ml"])
    assert (out / "issues.csv").is_file()
    # the body of a `--executor slurm` array task gives the same row and files as the local loop
    sid = s.index[0]
    task = StackTask(model, Source("dicom", out / "ingest" / "volumes", cohort), tmp_path / "task",
                     sid, CFG)
    row = run_stack_task(task)
    for key in ("ed_frame", "es_frame", "edv_ml", "esv_ml", "sv_ml", "lv_mass_g", "qc_flag"):
        assert row[key] == pytest.approx(s.loc[sid, key], rel=1e-12), key
    assert len(list((tmp_path / "task" / sid / "seg").glob("*.dcm"))) == \
        len(list((out / sid / "seg").glob("*.dcm")))


def test_predict_plain_scanner_folder(cohort: Path, model: Path, tmp_path: Path) -> None:
    """Two patients mixed in one flat export: each gets its own outputs (needs ingest of plain
    scanner exports, issue #15)."""
    src = plain_export(cohort, tmp_path / "export")
    out = tmp_path / "pred"
    res = predict(model, src, out, CFG)
    assert not res.failed
    summary = check_prediction(out, src, model, tmp_path)
    assert summary["patient_id"].nunique() == 2          # handled per patient, not refused
    # scanner-style truth is unknown: compare with labels on a truth file naming the patients
    truth = tmp_path / "truth.csv"
    pd.DataFrame({"Id": range(len(summary)), "Systole": 50.0, "Diastole": 120.0}).to_csv(truth)
    lab = labels_volumes(out / "ingest" / "volumes", model, truth, tmp_path / "lab")
    s = summary.set_index("stack_id")
    assert np.allclose(s["edv_ml"], lab.loc[s.index, "edv_ml"], rtol=0, atol=1e-9)
    assert np.allclose(s["esv_ml"], lab.loc[s.index, "esv_ml"], rtol=0, atol=1e-9)


def test_predict_nifti_matches_dicom(cohort: Path, model: Path, tmp_path: Path) -> None:
    import nibabel as nib

    first = predict(model, cohort, tmp_path / "dicom", CFG)
    sid = pd.read_csv(first.summary_csv, dtype=IDS)["stack_id"].iloc[0]
    nii = export_nifti(tmp_path / "dicom" / "ingest" / "volumes", sid, tmp_path / f"{sid}.nii.gz")
    res = predict(model, nii, tmp_path / "nifti", CFG)
    a = pd.read_csv(first.summary_csv, dtype=IDS).set_index("stack_id").loc[sid]
    b = pd.read_csv(res.summary_csv, dtype=IDS).iloc[0]
    assert np.isclose(a["edv_ml"], b["edv_ml"]) and np.isclose(a["esv_ml"], b["esv_ml"])
    lab = nib.load(tmp_path / "nifti" / sid / "labels.nii.gz")
    assert np.allclose(lab.affine, nib.load(nii).affine, atol=1e-5)
    assert not list((tmp_path / "nifti" / sid).glob("seg/*.dcm"))   # no source images to cite
    # an ingested volumes table (here the one the DICOM run made) gives the same numbers
    table = predict(model, tmp_path / "dicom" / "ingest", tmp_path / "table", CFG)
    pd.testing.assert_frame_equal(pd.read_csv(table.summary_csv, dtype=IDS),
                                  pd.read_csv(first.summary_csv, dtype=IDS))


def test_malformed_model_file(cohort: Path, model: Path, tmp_path: Path) -> None:
    bad = tmp_path / "junk.pt"
    bad.write_bytes(b"not a zip file at all")
    with pytest.raises(InputError, match=r"junk\.pt: not a (plain|readable) weights file"):
        predict(bad, cohort, tmp_path / "o1", CFG)
    state = torch.load(model, weights_only=True)
    del state["normalisation"], state["encoder"]
    old = tmp_path / "old.pt"
    torch.save(state, old)
    with pytest.raises(InputError, match=r"old\.pt: model file lacks normalisation, encoder"):
        predict(old, cohort, tmp_path / "o2", CFG)
    assert not (tmp_path / "o2").exists()     # refused before any ingest work


def test_folder_without_cine_series(tmp_path: Path, model: Path) -> None:
    src = tmp_path / "empty_study"
    (src / "train" / "7" / "study" / "2ch_1").mkdir(parents=True)
    (src / "train" / "7" / "study" / "2ch_1" / "IM-0001.dcm").write_bytes(b"x" * 200)
    with pytest.raises(InputError, match="empty_study.*(short-axis|cine|series)"):
        predict(model, src, tmp_path / "out", CFG)


def test_cli_prints_a_bad_model_in_one_line(tmp_path: Path, capsys) -> None:
    from hpc_seg.cli import main

    bad = tmp_path / "model.pt"
    bad.write_bytes(b"\x00" * 64)
    assert main(["predict", str(bad), str(tmp_path), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"hpc-seg: error: {bad}: not a ")
    assert "weights file" in err[0]
