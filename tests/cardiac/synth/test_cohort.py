"""Synthetic Kaggle-like cine cohort: layout, DICOM headers, geometry, masks, truth, CLI, resume."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest

from hpc_seg.cli import main
from hpc_seg.cardiac.synth.cohort import generate_cine_cohort, generate_patient
from hpc_seg.cardiac.synth.config import CineSynthConfig
from hpc_seg.errors import ConfigError, OutputError
from tests.cardiac.synth.helpers import (TINY, curated_lv_volumes, load_manifest,
                                                read_patient, score, truth_rows)

N_PATIENTS = 5
CONTRACT_TAGS = [
    "PatientID", "PatientAge", "PatientSex", "StudyInstanceUID", "SeriesInstanceUID",
    "SOPInstanceUID", "FrameOfReferenceUID", "SeriesNumber", "SeriesDescription", "InstanceNumber",
    "ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "SliceLocation",
    "SliceThickness", "TriggerTime", "CardiacNumberOfImages", "Rows", "Columns", "AcquisitionTime",
    "SeriesTime", "Manufacturer", "ManufacturerModelName", "MagneticFieldStrength",
    "RepetitionTime", "EchoTime", "FlipAngle"]


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Path:
    """Five quirk-free patients (label errors on: kinds drawn per patient)."""
    root = tmp_path_factory.mktemp("clean") / "cohort"
    generate_cine_cohort(root, N_PATIENTS, 7, CineSynthConfig(no_random_quirks=True, **TINY))
    return root


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_layout_splits_and_truth_csv(clean):
    manifest = load_manifest(clean)
    assert manifest["split_rule"] == "pid <= 3 train, <= 4 validate, else test"
    expected_split = {"1": "train", "2": "train", "3": "train", "4": "validate", "5": "test"}
    assert {p: e["split"] for p, e in manifest["patients"].items()} == expected_split
    for pid, split in expected_split.items():
        study = clean / split / pid / "study"
        kinds = {d.name.split("_")[0] for d in study.iterdir()}
        assert kinds == {"sax", "2ch", "4ch"}
        for folder in study.iterdir():
            for f in folder.iterdir():
                assert f.name.startswith("IM-") and f.suffix == ".dcm"
        assert (clean / "masks" / f"{pid}.npz").exists()
    truth = truth_rows(clean)
    assert sorted(truth, key=int) == list(expected_split)
    for systole, diastole in truth.values():
        assert 0 < systole < diastole
        assert 0.15 < (diastole - systole) / diastole < 0.8


def test_dicom_headers_follow_the_contract(clean):
    manifest = load_manifest(clean)
    series = read_patient(clean, "1", manifest)
    n_frames = TINY["n_frames"]
    uids = set()
    for sn, images in series.items():
        assert len(images) == n_frames
        assert len({im.ds.SeriesInstanceUID for im in images}) == 1
        trig = [float(im.ds.TriggerTime) for im in images]
        assert trig == sorted(trig) and trig[0] == 0.0
        for im in images:
            for tag in CONTRACT_TAGS:
                assert tag in im.ds, f"{im.path.name}: missing {tag}"
            assert int(im.ds.SeriesNumber) == sn
            assert im.ds.CardiacNumberOfImages == n_frames
            assert im.ds.PatientAge.endswith("Y") and len(im.ds.PatientAge) == 4
            assert im.ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
            assert im.ds.SOPClassUID == pydicom.uid.MRImageStorage
            uids.add(im.ds.SOPInstanceUID)
            assert abs(float(im.ds.SliceLocation) - im.position) < 1e-3
    assert len(uids) == sum(len(v) for v in series.values())
    full = pydicom.dcmread(series[min(series)][0].path)
    px = full.pixel_array
    assert px.dtype == np.uint16 and px.shape == (full.Rows, full.Columns)
    assert full.PhotometricInterpretation == "MONOCHROME2" and full.BitsAllocated == 16
    assert 300 < np.percentile(px, 99.5) < 4096


def test_geometry_matches_manifest_and_anatomy(clean):
    """Header positions equal the manifest's; the LV centroid (from the masks placed by IPP/IOP)
    follows one straight axis through the stack, so pixels, masks and geometry agree."""
    manifest = load_manifest(clean)
    for pid in manifest["patients"]:
        stack = manifest["patients"][pid]["expected_stacks"][0]
        series = read_patient(clean, pid, manifest)
        masks = np.load(clean / "truth_masks" / f"{pid}.npz")
        normals = [im.normal for imgs in series.values() for im in imgs]
        assert all(abs(abs(n @ normals[0]) - 1) < 1e-6 for n in normals)
        by_pos = sorted((imgs[0].position, sn) for sn, imgs in series.items())
        assert np.allclose([p for p, _ in by_pos], stack["slice_positions_mm"], atol=0.05)
        assert [sn for _, sn in by_pos] == stack["kept_series_by_position"]
        assert np.allclose(np.diff([p for p, _ in by_pos]), stack["slice_spacing_mm"], atol=0.05)
        centroids = []
        for _, sn in by_pos:
            im = series[sn][0]
            rr, cc = np.nonzero(masks[im.ds.SOPInstanceUID] == 1)
            if len(rr) >= 3:
                centroids.append(im.lps(rr, cc).mean(axis=0))
        pts = np.asarray(centroids)
        assert len(pts) >= 4
        axis = np.linalg.svd(pts - pts.mean(0))[2][0]
        resid = (pts - pts.mean(0)) - np.outer((pts - pts.mean(0)) @ axis, axis)
        assert np.abs(resid).max() < 6.0, f"patient {pid}: LV centres off the long axis"


def test_masks_are_aligned_with_pixels(clean):
    manifest = load_manifest(clean)
    for pid in manifest["patients"]:
        masks = np.load(clean / "truth_masks" / f"{pid}.npz")
        shipped = np.load(clean / "masks" / f"{pid}.npz")
        assert set(masks.files) == set(shipped.files)
        cav, myo, bg = [], [], []
        for sn, images in read_patient(clean, pid, manifest).items():
            im = pydicom.dcmread(images[0].path)
            m = masks[im.SOPInstanceUID]
            assert m.shape == (im.Rows, im.Columns) and m.dtype == np.uint8
            assert set(np.unique(m)) <= {0, 1, 2, 3}
            px = im.pixel_array.astype(float)
            cav += list(px[m == 1]); myo += list(px[m == 2]); bg += list(px[m == 0])
        assert np.mean(cav) > 1.8 * np.mean(myo), f"patient {pid}: blood not bright in bSSFP"


def test_truth_is_what_a_perfect_curated_segmentation_measures(clean):
    manifest, truth = load_manifest(clean), truth_rows(clean)
    errors = {}
    for pid, entry in manifest["patients"].items():
        stack = entry["expected_stacks"][0]
        vols = curated_lv_volumes(clean, pid, manifest, stack)
        assert int(np.argmin(vols)) not in (0, len(vols) - 1)     # ES inside the cycle
        assert score(vols, *truth[pid]) < 0.02
        shipped = curated_lv_volumes(clean, pid, manifest, stack, masks_dir="masks")
        errors[pid] = score(shipped, *truth[pid])
        assert errors[pid] == pytest.approx(entry["label_error"], abs=1e-3)
        if entry["label_error_kind"] == "none":
            assert errors[pid] < 0.02
        else:
            assert errors[pid] > 0.02
    assert len({round(e, 3) for e in errors.values()}) > 1


def test_deterministic_in_seed_and_pid_whatever_the_worker_count(clean, tmp_path):
    cfg = CineSynthConfig(no_random_quirks=True, **{**TINY, "workers": 2})
    again = tmp_path / "two_workers"
    generate_cine_cohort(again, N_PATIENTS, 7, cfg)
    assert _digest(again) == _digest(clean)
    # One patient on its own (another cohort size, so another manifest) gives the same files.
    alone = tmp_path / "alone"
    alone.mkdir()
    generate_patient(7, 2, 9, CineSynthConfig(no_random_quirks=True, **TINY), alone)
    mine = {k: v for k, v in _digest(alone).items() if k.startswith("train/2/")}
    theirs = {k: v for k, v in _digest(clean).items() if k.startswith("train/2/")}
    assert mine == theirs and len(mine) > 50
    other_seed = tmp_path / "other_seed"
    generate_cine_cohort(other_seed, 1, 8, CineSynthConfig(no_random_quirks=True, **TINY))
    assert truth_rows(other_seed)["1"] != truth_rows(clean)["1"]


def test_refuses_existing_output_and_resumes_an_interrupted_run(clean, tmp_path):
    cfg = CineSynthConfig(no_random_quirks=True, **TINY)
    before = _digest(clean)       # a finished cohort with the same settings: nothing to do
    assert generate_cine_cohort(clean, N_PATIENTS, 7, cfg) == clean / "manifest.json"
    assert _digest(clean) == before
    with pytest.raises(OutputError, match=r"other settings \(seed 7 -> 8\); .* --overwrite"):
        generate_cine_cohort(clean, N_PATIENTS, 8, cfg)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("precious")
    with pytest.raises(OutputError, match="not a synthetic cine cohort"):
        generate_cine_cohort(foreign, 2, 7, cfg, overwrite=True)
    assert (foreign / "keep.txt").read_text() == "precious"
    # Simulate an interruption: no manifest, patient 5 unfinished, a stale temporary folder.
    work = tmp_path / "work"
    shutil.copytree(clean, work)
    (work / "manifest.json").unlink()
    (work / ".patients" / "5.json").unlink()
    shutil.rmtree(work / "test" / "5")
    (work / "test" / ".tmp-5-deadbeef" / "study").mkdir(parents=True)
    generate_cine_cohort(work, N_PATIENTS, 7, cfg)
    assert _digest(work) == _digest(clean)
    with pytest.raises(OutputError, match="other settings"):
        (work / "manifest.json").unlink()
        generate_cine_cohort(work, N_PATIENTS, 8, cfg)


def test_config_validation():
    with pytest.raises(ConfigError, match="n_frames"):
        CineSynthConfig(n_frames=2)
    with pytest.raises(ConfigError, match="unknown quirk 'nope'"):
        CineSynthConfig(quirk_rates={"nope": 0.5})
    with pytest.raises(ConfigError, match="quirk_rates.not_dicom"):
        CineSynthConfig(quirk_rates={"not_dicom": 1.5})
    with pytest.raises(ConfigError, match="matrix_weights"):
        CineSynthConfig(matrices=[[256, 208]])
    with pytest.raises(ConfigError, match="label_error"):
        CineSynthConfig(label_error={"erode": -1.0})


def test_cli_smoke_and_bad_option(tmp_path, capsys):
    out = tmp_path / "cli"
    argv = ["synth", "cine", str(out), "--patients", "2", "--max-matrix", "64",
            "--n-frames", "4", "--workers", "1", "--no-random-quirks",
            "--force-quirks", "not_dicom=2"]
    assert main([*argv, "--seed", "1"]) == 0
    manifest = load_manifest(out)
    assert manifest["generator"]["n_frames"] == 4 and manifest["generator"]["seed"] == 1
    assert manifest["patients"]["2"]["quirks"] == ["not_dicom"]
    assert manifest["patients"]["1"]["quirks"] == []
    assert main([*argv, "--seed", "1"]) == 0      # the same cohort again: nothing to do
    assert main([*argv, "--seed", "2"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main([*argv, "--seed", "2", "--overwrite"]) == 0
    assert load_manifest(out)["generator"]["seed"] == 2
    assert main(["synth", "cine", str(tmp_path / "bad"), "--max-matrix", "8"]) == 2
    err = capsys.readouterr().err
    assert "max_matrix" in err and "8" in err and "Traceback" not in err
    assert main(["synth", "cine", str(tmp_path / "bad"), "--force-quirks", "not_dicom"]) == 2
    assert "NAME=VALUE" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_cli_reads_a_job_table(tmp_path, capsys):
    job = tmp_path / "job.toml"
    job.write_text("[synth_cine]\npatients = 1\nseed = 4\nn_frames = 4\nmax_matrix = 48\n"
                   "no_random_quirks = true\nlabel_error = {none = 1.0}\n")
    assert main(["synth", "cine", str(tmp_path / "job"), "--job", str(job),
                 "--workers", "1"]) == 0
    manifest = load_manifest(tmp_path / "job")
    assert list(manifest["patients"]) == ["1"] and manifest["generator"]["seed"] == 4
    assert manifest["generator"]["max_matrix"] == 48
    job.write_text("[synth_cine]\nn_frame = 4\n")
    assert main(["synth", "cine", str(tmp_path / "bad"), "--job", str(job)]) == 2
    err = capsys.readouterr().err
    assert "n_frame" in err and "valid keys" in err


def test_7t_domain_has_lv_and_myocardium_labels_only(tmp_path):
    cfg = CineSynthConfig(domain="7t", **TINY)
    generate_cine_cohort(tmp_path / "7t", 2, 3, cfg)
    manifest = load_manifest(tmp_path / "7t")
    for pid, entry in manifest["patients"].items():
        assert entry["quirks"] == [] and entry["skipped_files"] == []
        masks = np.load(tmp_path / "7t" / "truth_masks" / f"{pid}.npz")
        labels = set().union(*(np.unique(masks[k]).tolist() for k in masks.files))
        assert labels == {0, 1, 2}
        im = next(iter(read_patient(tmp_path / "7t", pid, manifest).values()))[0]
        assert float(im.ds.MagneticFieldStrength) == 7.0
