"""The HAD-Net paired table on hand-made per-case scores with known differences."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hpc_seg.hadnet.score_tables import paired_markdown, paired_table


def _per_case() -> pd.DataFrame:
    """8 cases; ET absent from the truth of cases 6 and 7 (sensitivity undefined there)."""
    rows = []
    rng = np.random.default_rng(0)
    for i in range(8):
        has_et = i < 6
        base = {"WT": 0.8, "TC": 0.6, "ET": 0.4 if has_et else 1.0}
        gain = {"HAD-Net": 0.1, "AD-Net": 0.05, "student": 0.0}
        for model, g in gain.items():
            for region, b in base.items():
                empty = region == "ET" and not has_et
                rows.append({"model": model, "case_id": f"c{i}", "region": region,
                             "dice": b if empty else b + g + rng.normal(0, 0.01),
                             "sensitivity": np.nan if empty else 0.5,
                             "qu": 0.7 + g / 2})
    return pd.DataFrame(rows)


def test_paired_table_rows_and_known_differences():
    out = paired_table(_per_case())
    assert list(out.columns) == ["comparison", "region", "metric", "cases", "n", "mean_diff",
                                 "ci_low", "ci_high", "p_wilcoxon"]
    # the control (student-ft) was not evaluated: its comparison is left out
    assert set(out.comparison) == {"HAD-Net - student", "HAD-Net - AD-Net", "AD-Net - student"}
    et = out[(out.comparison == "HAD-Net - student") & (out.region == "ET")
             & (out.metric == "dice")].set_index("cases")
    assert et.loc["all", "n"] == 8 and et.loc["with region", "n"] == 6
    # cases without ET score 1 for both (empty predictions): they dilute the mean to 6/8 of it
    assert et.loc["with region", "mean_diff"] == pytest.approx(0.1, abs=0.01)
    assert et.loc["all", "mean_diff"] == pytest.approx(0.075, abs=0.01)
    assert et.loc["with region", "ci_low"] > 0 and et.loc["with region", "p_wilcoxon"] < 0.05
    qu = out[(out.comparison == "HAD-Net - AD-Net") & (out.metric == "qu")]
    assert qu.mean_diff.to_numpy() == pytest.approx(0.025)
    md = paired_markdown(out)
    assert md.count("\n") == len(out) + 2 and "| HAD-Net - AD-Net | ET | qu |" in md
