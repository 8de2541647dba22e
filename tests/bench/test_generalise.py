"""bench generalise: the held-out cohort really comes from the held-out ranges; the scores."""

from __future__ import annotations

import pandas as pd
import pytest

from hpc_seg.bench.generalise import GeneraliseConfig, _cohort_config, _scores, train_config
from hpc_seg.errors import ConfigError


def test_cohorts_come_from_their_own_part_of_the_ranges(tmp_path):
    cfg = GeneraliseConfig(workdir=tmp_path, image_size=64)
    train, held = _cohort_config(cfg, held_out=False), _cohort_config(cfg, held_out=True)
    assert train.variety and held.variety
    assert not set(train.vendors) & set(held.vendors)
    assert train.size_scale == cfg.train_sizes and held.size_scale == cfg.test_sizes
    # Both quirk-free with exact labels: the benchmark measures generalisation only.
    for c in (train, held):
        assert c.no_random_quirks and c.label_error == {"none": 1.0}
    baseline = _cohort_config(GeneraliseConfig(workdir=tmp_path, train_variety=False), False)
    assert not baseline.variety
    assert train_config(cfg).image_size == 64 and train_config(cfg).confidence_set == "all"
    with pytest.raises(ConfigError, match="own seed"):
        GeneraliseConfig(workdir=tmp_path, train_seed=3, test_seed=3)


def test_scores_are_mean_absolute_errors():
    df = pd.DataFrame({"true_edv_ml": [100.0, 200.0], "pred_edv_ml": [110.0, 180.0],
                       "true_esv_ml": [50.0, 100.0], "pred_esv_ml": [45.0, 100.0],
                       "abs_diff": [0.02, 0.04], "pred_ef": [0.5, 0.5]})
    s = _scores(df)
    assert s["ef_err"] == pytest.approx(3.0)
    assert s["edv_err_pct"] == pytest.approx(10.0) and s["edv_bias_pct"] == pytest.approx(0.0)
    assert s["esv_err_pct"] == pytest.approx(5.0) and s["n"] == 2 and s["missing"] == 0
    # A patient without a prediction is a full error, not left out of the mean.
    missing = _scores(df.assign(pred_edv_ml=[110.0, None], pred_ef=[0.5, None]))
    assert missing["edv_err_pct"] == pytest.approx(55.0) and missing["missing"] == 1


def test_a_tiny_run_scores_the_held_out_cohort_and_saves_its_results(tmp_path):
    """End to end on a few tiny patients: what is scored and saved, and that a re-run reuses data."""
    import json

    from hpc_seg.bench.generalise import run_bench, save_results, target_met

    cfg = GeneraliseConfig(workdir=tmp_path, train_patients=5, test_patients=5, n_frames=4,
                           max_matrix=64, slices=(6, 6), image_size=32, workers=1,
                           train={"epochs_frozen": 1, "epochs_unfrozen": 0, "batch_size": 4,
                                  "max_train_images": 8, "max_val_images": 8, "threads": 1,
                                  "decoder_channels": [16, 8, 8, 8, 8]})
    r = run_bench(cfg)
    assert set(r["scores"]) == {("held_out", "model"), ("held_out", "label masks"),
                                ("own_test", "model"), ("own_test", "label masks")}
    # Every held-out patient is scored (all splits), and only with the held-out vendors and sizes.
    held = r["per_patient_held_out"]
    assert r["scores"][("held_out", "label masks")]["n"] == 5
    assert set(held.vendor) <= {"Philips Medical Systems", "Canon Medical Systems"}
    assert held.size_scale.between(*cfg.test_sizes).all()
    path = save_results(cfg, r)
    doc = json.loads(path.read_text())
    assert path.parent == tmp_path / "train_variety" and doc["config"]["image_size"] == 32
    assert {(s["cohort"], s["method"]) for s in doc["scores"]} == set(r["scores"])
    assert doc["target_met"] == target_met(r["scores"][("held_out", "model")])
    rows = pd.read_csv(path.parent / "held_out_per_patient.csv")
    assert len(rows) == len(held)
    # A re-run generates nothing again: the cohorts' files keep their modification times.
    manifest = tmp_path / "held_out" / "cohort" / "manifest.json"
    before = manifest.stat().st_mtime_ns
    run_bench(cfg)
    assert manifest.stat().st_mtime_ns == before
