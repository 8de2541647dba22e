"""The report's pieces without a browser: number formatting, readable stage records, paired
statistics lookup, and the search-only headline."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from hpc_seg.pipeline.registry import FINDINGS
from hpc_seg.report import numbers
from hpc_seg.report.collect import readable, stage_records
from hpc_seg.report.findings import collect_findings, paired_comparison
from tests.report.demo_run import study_db


@pytest.mark.parametrize("value, decimals, text", [
    (0.26790340065956114, None, "0.2679"), (0.0006616, None, "0.0006616"), (3.2e-05, None, "3.2e-5"),
    (123456, None, "123.5k"), (7, None, "7"), (37.0612, 2, "37.06"), (1234.567, 2, "1235"),
    (0.0, 3, "0.000"), (84.0, 1, "84.0"), (-0.0001, 2, "0.00"), (float("nan"), 2, "–"),
    (None, None, "–"), (True, None, "yes")])
def test_number(value, decimals, text) -> None:
    assert numbers.number(value, decimals) == text


def test_column_shares_decimals_and_keeps_text() -> None:
    assert numbers.column(pd.Series([0.91234, 0.045, float("nan")])) == ["0.9123", "0.0450", ""]
    assert numbers.column(pd.Series([12.345, 3.2])) == ["12.35", "3.20"]
    assert numbers.column(pd.Series([1, 2, 30])) == ["1", "2", "30"]
    assert numbers.column(pd.Series([0.5, "not run"])) == ["0.5", "not run"]


@pytest.mark.parametrize("seconds, text", [(0.42, "0.4 s"), (12.3, "12 s"), (185, "3 min 05 s"),
                                           (3725, "1 h 02 min"), (None, "–")])
def test_duration(seconds, text) -> None:
    assert numbers.duration(seconds) == text


def test_readable_stage_values(tmp_path: Path) -> None:
    run = tmp_path
    assert readable(str(run / "evaluate" / "ef_table.csv"), run) == ("evaluate/ef_table.csv", True)
    assert readable(f"sqlite:///{run}/tune/study.db", run) == ("tune/study.db", True)
    assert readable("/elsewhere/x.pt", run) == ("/elsewhere/x.pt", True)
    assert readable("ab" * 32, run) is None                        # a digest
    assert readable(0.0007957489130278428, run) == ("0.0007957", False)
    assert readable({"lr": 0.0007957489130278428, "teacher_sha256": "ab" * 32}, run) == \
        ("lr 0.0007957", False)
    text, _ = readable(f"LabelsSummary(out_dir='{run}/labels', stacks=11, counts={{'p05': "
                       "{'train': 3}}, masks_in='volumes')", run)
    assert text == "out_dir labels, stacks 11, counts 1 entries, masks_in volumes"
    assert readable("Not(a valid repr", run) == ("Not(a valid repr", False)


def test_stage_records_tolerate_a_broken_record(tmp_path: Path) -> None:
    (tmp_path / ".stages").mkdir()
    (tmp_path / ".stages" / "bad.json").write_text("{")
    rows = stage_records(tmp_path)
    assert rows[0].stage == "bad" and rows[0].outputs == [("record", "unreadable: JSONDecodeError",
                                                          False)]


@pytest.mark.parametrize("frame, where", [
    (pd.DataFrame({"comparison": ["HAD-Net vs student"], "region": ["ET"], "mean_diff": [0.05],
                   "ci_low": [0.01], "ci_high": [0.09], "p_value": [0.02], "n": [12]}),
     {"region": "ET"}),
    (pd.DataFrame({"model_a": ["HAD-Net", "HAD-Net"], "model_b": ["student", "student"],
                   "region": ["TC", "ET"], "diff": [0.5, 0.05], "ci95_low": [0.4, 0.01],
                   "ci95_high": [0.6, 0.09], "wilcoxon_p": [0.5, 0.02], "n_pairs": [12, 12]}),
     {"region": "ET", "metric": "dice"}),     # no metric column: that key is ignored
])
def test_paired_comparison_reads_common_layouts(tmp_path: Path, frame, where) -> None:
    frame.to_csv(tmp_path / "paired.csv", index=False)
    pd.DataFrame({"model": ["x"], "mean": [1.0]}).to_csv(tmp_path / "other.csv", index=False)
    got = paired_comparison(tmp_path, "HAD-Net", "student", **where)
    assert got is not None
    assert got.diff == pytest.approx(0.05) and got.ci == pytest.approx((0.01, 0.09))
    assert got.p_value == pytest.approx(0.02) and got.n == 12
    assert paired_comparison(tmp_path, "HAD-Net", "AD-Net", **where) is None


def test_columns_the_views_leave_out_are_shown_whole(tmp_path: Path) -> None:
    from hpc_seg.report.findings import extra_columns

    df = pd.DataFrame({"model": ["a"], "LV": [0.5], "LV_ci_low": [0.4]})
    (ev,) = extra_columns(df, tmp_path / "t.csv", {"model", "LV"}, "Dice")
    assert ev.title == "Dice: every column" and "LV_ci_low" in ev.caption and ev.fold
    assert extra_columns(df, tmp_path / "t.csv", set(df.columns), "Dice") == []


def test_search_only_run_has_a_search_headline(tmp_path: Path) -> None:
    """jobs/cardiac_search.toml runs only the search: its headline is the best trial."""
    (tmp_path / "tune").mkdir()
    study_db(tmp_path / "tune" / "study.db")
    (tmp_path / ".stages").mkdir()
    (tmp_path / ".stages" / "tune.json").write_text(json.dumps({"stage": "tune", "seconds": 3.0,
                                                               "result": {}}))
    found = collect_findings(tmp_path, FINDINGS)
    assert [s.key for s in found] == ["cardiac"]
    (head,) = found[0].headlines
    assert head.key == "cardiac.search_best" and head.label.startswith("best trial's val_loss")
    assert head.value == pytest.approx(0.26790340065956114, abs=0.01) and head.n == 3
    assert head.published is None and "evaluate" in head.published_text
