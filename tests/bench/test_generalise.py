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
