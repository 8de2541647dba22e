"""Labels stage: volumes, ED/ES, confidence scores and sets; the pluggable label sources."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from hpc_seg.cardiac.labels.confidence import confidence_score, ed_es_frames, set_membership
from hpc_seg.cardiac.labels.build import build_labels
from hpc_seg.storage.shards import decode_array, iter_rows, read_table
from hpc_seg.errors import ConfigError, InputError
from tests.cardiac.cohort import write_volumes


def test_confidence_score_and_sets_by_hand():
    # |ESV - S|/S = 5/50 = 0.10, |EDV - D|/D = 6/120 = 0.05 -> 0.10
    score = confidence_score(edv=126.0, esv=55.0, diastole=120.0, systole=50.0)
    assert score == pytest.approx(0.10)
    assert set_membership(0.10) == {"in_p05": False, "in_p10": True, "in_p15": True}
    assert set_membership(float("nan")) == {"in_p05": False, "in_p10": False, "in_p15": False}
    assert np.isnan(confidence_score(100.0, 50.0, float("nan"), 40.0))
    assert ed_es_frames(np.array([5.0, 9.0, 2.0, 4.0])) == (0, 2)
    assert ed_es_frames(np.array([5.0, 9.0, 2.0, 4.0]), "max") == (1, 2)


def test_labels_table_and_counts(cohort):
    labels = read_table(cohort["labels"] / "labels").to_pandas()
    vol = next(iter_rows(cohort["volumes"], batch_size=1))
    mask = decode_array(vol["mask"], vol["shape"], "|u1")
    lv = (mask == 1).reshape(mask.shape[0], -1).sum(1) * 1.5 * 1.5 * 8 / 1000
    first = labels[labels.stack_id == vol["stack_id"]].sort_values("frame")
    assert first.lv_ml.to_numpy() == pytest.approx(lv)
    assert first.is_ed.tolist() == [t == 0 for t in range(len(lv))]
    assert first.is_es.to_numpy().argmax() == int(np.argmin(lv))
    scores = labels.drop_duplicates("stack_id").set_index("stack_id").score
    assert scores["1"] == pytest.approx(0, abs=1e-9)
    assert scores["2"] == pytest.approx(0.08 / 1.08)
    assert scores["3"] == pytest.approx(0.20 / 1.20)
    counts = pd.read_csv(cohort["labels"] / "confidence_counts.csv", index_col="set")
    assert counts.loc["p05"].to_dict() == {"train": 1, "validate": 1, "test": 1, "total": 3}
    assert counts.loc["p10"].to_dict() == {"train": 2, "validate": 1, "test": 1, "total": 4}
    assert counts.loc["all", "total"] == 5


def test_rerun_skips_and_folder_sources_match_shipped(cohort, tmp_path):
    again = build_labels(cohort["volumes"], cohort["labels"], cohort["truth"])
    assert again.labelled_stacks == 5
    shipped = read_table(cohort["labels"] / "labels").to_pandas()
    nifti, png = tmp_path / "nifti", tmp_path / "png"
    nifti.mkdir()
    for row in iter_rows(cohort["volumes"], batch_size=1):
        m = decode_array(row["mask"], row["shape"], "|u1")
        if row["stack_id"] == "1":  # ukbb_cardiac layout: <id>/seg_sa.nii.gz, [col, row, slice, frame]
            (nifti / "1").mkdir()
            nib.save(nib.Nifti1Image(m.transpose(3, 2, 1, 0).copy(), np.eye(4)), nifti / "1" / "seg_sa.nii.gz")
        else:
            nib.save(nib.Nifti1Image(m.transpose(3, 2, 1, 0).copy(), np.eye(4)), nifti / f"{row['stack_id']}.nii.gz")
        if row["stack_id"] == "4":
            (png / "4").mkdir(parents=True)
            for t in range(m.shape[0]):
                for k in range(m.shape[1]):
                    Image.fromarray(m[t, k]).save(png / "4" / f"slice{k}_frame{t}.png")
    summary = build_labels(cohort["volumes"], tmp_path / "from_nifti", cohort["truth"], source=f"folder:{nifti}")
    assert summary.labelled_stacks == 5 and summary.masks_in == "masks"
    got = read_table(tmp_path / "from_nifti" / "labels").to_pandas()
    assert np.allclose(got.sort_values(["stack_id", "frame"]).lv_ml, shipped.sort_values(["stack_id", "frame"]).lv_ml)
    summary = build_labels(cohort["volumes"], tmp_path / "from_png", cohort["truth"], source=f"folder:{png}")
    assert summary.labelled_stacks == 1 and summary.skipped == 4
    skipped = pd.read_csv(tmp_path / "from_png" / "skipped.csv")
    assert sorted(skipped.stack_id.astype(str)) == ["1", "2", "3", "5"]
    assert json.loads((tmp_path / "from_png" / "labels.json").read_text())["source"] == f"folder:{png}"


def test_bad_inputs_name_the_problem(cohort, tmp_path):
    with pytest.raises(ConfigError, match="label source"):
        build_labels(cohort["volumes"], tmp_path / "x", cohort["truth"], source="magic")
    with pytest.raises(InputError, match="label folder not found"):
        build_labels(cohort["volumes"], tmp_path / "x", cohort["truth"], source=f"folder:{tmp_path}/nope")
    bad = tmp_path / "truth.csv"
    bad.write_text("Id,Sys\n1,2\n")
    with pytest.raises(InputError, match="truth.csv: missing column"):
        build_labels(cohort["volumes"], tmp_path / "y", bad)
    with pytest.raises(InputError, match="no volumes shards"):
        build_labels(tmp_path / "empty", tmp_path / "z", cohort["truth"])


def test_patient_without_truth_is_in_no_set(tmp_path):
    volumes, truth = write_volumes(tmp_path, n_patients=3, frames=4, slices=2, rows=24, cols=24)
    df = pd.read_csv(truth)
    df[df.Id != 3].to_csv(truth, index=False)
    summary = build_labels(volumes, tmp_path / "labels", truth)
    labels = read_table(tmp_path / "labels" / "labels").to_pandas()
    row = labels[labels.stack_id == "3"].iloc[0]
    assert np.isnan(row.score) and not row.in_p15
    assert summary.skipped == 1


def test_model_predictions_as_label_source(cohort, tmp_path):
    from hpc_seg.cardiac.labels.build import load_stack_masks
    from hpc_seg.cardiac.segment import label_source
    from hpc_seg.cardiac.train.loop import train_segmenter
    from tests.cardiac.cohort import tiny_config

    model = train_segmenter(tiny_config(epochs_frozen=0, epochs_unfrozen=1, augment="none"),
                            cohort["slices"], tmp_path / "run").model_path
    summary = build_labels(cohort["volumes"], tmp_path / "labels", cohort["truth"], source=label_source(f"model:{model}"))
    assert summary.labelled_stacks == 5 and summary.source == f"model:{model}"
    masks = load_stack_masks(tmp_path / "labels")
    assert masks["1"].shape == (6, 3, 40, 48) and set(np.unique(masks["1"])) <= {0, 1, 2}


def test_truth_from_ingest_subjects_table(tmp_path):
    import pyarrow as pa

    from hpc_seg.storage.shards import atomic_write_table

    volumes, truth = write_volumes(tmp_path, n_patients=3, frames=4, slices=2, rows=24, cols=24)
    df = pd.read_csv(truth)
    subjects = pa.table({"patient_id": df.Id.astype(str), "Systole": df.Systole, "Diastole": df.Diastole})
    atomic_write_table(subjects, tmp_path / "subjects" / "part-0.parquet")
    summary = build_labels(volumes, tmp_path / "labels", None)
    assert summary.labelled_stacks == 3 and summary.skipped == 0
    (tmp_path / "subjects" / "part-0.parquet").unlink()
    with pytest.raises(InputError, match="subjects"):
        build_labels(volumes, tmp_path / "labels2", None)
