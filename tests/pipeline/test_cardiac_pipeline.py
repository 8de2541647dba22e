"""End to end on a synthetic DICOM cohort: synth -> ingest -> labels -> slices -> train -> evaluate."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from hpc_seg.cli import main


def test_synthetic_cohort_end_to_end(tmp_path, capsys):
    coh, ing, lab = tmp_path / "cohort", tmp_path / "ingest", tmp_path / "labels"
    assert main(["synth", "cine", str(coh), "--patients", "4", "--max-matrix", "64", "--n-frames", "6",
                 "--workers", "1"]) == 0
    assert main(["ingest", str(coh), str(ing), "--workers", "1"]) == 0
    assert main(["labels", str(ing / "volumes"), str(lab), "--image-size", "64"]) == 0  # truth from subjects
    # the confidence score reproduces the generator's per-patient label error
    manifest = json.loads((coh / "manifest.json").read_text())["patients"]
    labels = pd.read_parquet(lab / "labels").drop_duplicates("subject_id")
    for row in labels.itertuples():
        assert row.score == pytest.approx(manifest[row.patient_id]["label_error"], abs=0.02), row.subject_id
    assert main(["train", str(lab / "slices_64"), str(tmp_path / "run"), "--preset", "debug",
                 "--epochs-frozen", "1", "--epochs-unfrozen", "0", "--max-train-images", "48"]) == 0
    assert main(["evaluate", str(lab / "slices_64"), str(lab), str(tmp_path / "eval"),
                 "--model", f"debug={tmp_path / 'run' / 'model.pt'}"]) == 0
    ef = pd.read_csv(tmp_path / "eval" / "ef_table.csv").set_index("method")
    assert set(ef.index) == {"debug", "label source (shipped)"}
    assert ef.loc["label source (shipped)", "n"] == 1
    pred = pd.read_parquet(tmp_path / "eval" / "predictions" / "debug.parquet")
    assert pred.subject_id.nunique() == 1 and (pred.split == "test").all()
    capsys.readouterr()
