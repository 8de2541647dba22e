"""The HTML report over a run folder: the answer first (headlines beside the published numbers),
then the evidence; checked in a real headless Chromium."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pandas as pd
import pytest

from hpc_seg.errors import InputError
from hpc_seg.pipeline.registry import FINDINGS
from hpc_seg.report.collect import stage_records
from hpc_seg.report.console import closing_lines
from hpc_seg.report.findings import collect_findings
from hpc_seg.report.page import build_report
from tests.report.browser import chromium_path, load_page
from tests.report.checks import FACTS_JS, REPR, page_problems, shown_headlines
from tests.report.demo_run import (PAIRED, TRANSFER_PAIRED, demo_like_run, ingest_issues, lineage, png,
                                   study_db)


# --- a run folder whose job nobody knows: the generic page --------------------------------

@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("run")
    (run / ".stages").mkdir()
    for i, name in enumerate(["ingest", "tune", "evaluate"]):
        (run / ".stages" / f"{name}.json").write_text(json.dumps(
            {"stage": name, "seconds": 1.5 * (i + 1), "result": {
                "out": str(run / name), "model_sha256": "ab" * 32,
                "summary": "Thing(out_dir='x', n=3, counts={'a': 1})"}}))
    (run / "results").mkdir()
    pd.DataFrame({"model": ["best", "other"], "score": [0.26790340065956114, 0.0006616],
                  "count": [123456, 7]}).to_csv(run / "results" / "scores.csv", index=False)
    pd.DataFrame({"target": ["7t"], "gain": [0.05]}).to_csv(run / "results" / "gains_xyz.csv",
                                                            index=False)
    pd.DataFrame({"step": range(40), "loss": [1 / (i + 1) for i in range(40)]}).to_csv(
        run / "results" / "curve.csv", index=False)
    png(run / "results" / "curve.png")
    png(run / "elsewhere" / "lonely.png")
    ingest_issues(run / "ingest" / "issues")
    (run / "tune").mkdir()
    study_db(run / "tune" / "study.db")
    lineage(run / "tune" / "lineage.sqlite", ("predict", "predict"))
    return run


def _table_with(text: str, cell: str) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the first HTML table holding a cell ``cell`` (cells as text)."""
    from html.parser import HTMLParser

    class Tables(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.tables: list[list[list[str]]] = []
            self.cell: list[str] | None = None

        def handle_starttag(self, tag, attrs):
            if tag == "table":
                self.tables.append([])
            elif tag == "tr" and self.tables:
                self.tables[-1].append([])
            elif tag in ("td", "th"):
                self.cell = []

        def handle_endtag(self, tag):
            if tag in ("td", "th") and self.cell is not None:
                self.tables[-1][-1].append("".join(self.cell).strip())
                self.cell = None

        def handle_data(self, data):
            if self.cell is not None:
                self.cell.append(data)

    parser = Tables()
    parser.feed(text)
    table = next(t for t in parser.tables if any(cell in row for row in t))
    return table[0], table[1:]


def test_generic_report_content(run_dir: Path) -> None:
    page = build_report(run_dir)
    text = page.read_text()
    assert page == run_dir / "report.html"
    for expected in ("Appendix: stages and timings", "Files in results", "gains xyz",
                     "Optuna study tune", "Best trial of study cardiac_search", "41_1", "TIMEOUT", "missing_frames",
                     "hpc-seg study dashboard", "no study recognised"):
        assert expected in text, expected
    # rounded, readable values: no long floats, no digests, no object reprs, relative paths
    assert "0.2679<" in text and "0.26790340065956114" not in text and "123.5k" in text
    assert "ab" * 32 not in text and "Thing(" not in text and "out_dir x" in text
    assert f"<code>{run_dir}/ingest</code>" not in text and "<code>ingest</code>" in text
    # the lineage table: the first task ran 00:00:00 -> 00:01:30, its wall time is 90 s
    header, rows = _table_with(text, "41_0")
    job = next(r for r in rows if "41_0" in r)
    assert float(job[header.index("wall_s")]) == 90.0
    assert float(next(r for r in rows if "41_1" in r)[header.index("wall_s")]) == 3600.0
    # ingest issues counted by problem
    header, rows = _table_with(text, "missing_frames")
    assert any("missing_frames" in r and "2" in r for r in rows)
    assert "<script" not in text and "<link" not in text
    assert 'src="http' not in text and "url(" not in text
    files = sorted(p.name for p in (run_dir / "report_files").iterdir())
    assert any("history" in f for f in files) and any("importances" in f for f in files)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["studies"] == [] and [s["stage"] for s in summary["stages"]] == [
        "ingest", "tune", "evaluate"]
    assert summary["total_seconds"] == pytest.approx(9.0)


def test_report_of_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="run folder not found"):
        build_report(tmp_path / "nope")


# --- a demo-shaped run: the answer first -----------------------------------------------------

@pytest.fixture(scope="module")
def demo_run(tmp_path_factory) -> Path:
    return demo_like_run(tmp_path_factory.mktemp("demo"))


def expected_headlines(run: Path) -> dict[str, float | None]:
    """Each headline's value, recomputed here from the run's CSVs (independently of the
    studies' findings code)."""
    ef = pd.read_csv(run / "evaluate" / "ef_table.csv")
    source = ef.method.str.startswith("label source")
    dice = pd.read_csv(run / "transfer" / "evaluate" / "dice_table.csv").set_index("model")
    had = pd.read_csv(run / "hadnet_evaluate" / "scores_summary.csv")

    def hadnet(model: str, region: str, metric: str) -> float:
        return float(had[(had.model == model) & (had.region == region)
                         & (had.metric == metric)]["mean"].iloc[0])

    return {"cardiac.ef_error": float(ef[~source]["mean"].min()),
            "cardiac.ef_error_label_source": float(ef[source]["mean"].iloc[0]),
            "transfer.tl2_lv": float(dice.loc["TL2", "LV"]),
            "transfer.r_lv": float(dice.loc["R", "LV"]),
            "transfer.tl_lv": None,            # not run: no ImageNet weights
            "transfer.tl2_minus_r": float(dice.loc["TL2-v1", "LV"] - dice.loc["R-v1", "LV"]),
            "hadnet.et_dice": hadnet("HAD-Net", "ET", "dice"),
            "hadnet.tc_dice": hadnet("HAD-Net", "TC", "dice"),
            "hadnet.et_qu": hadnet("HAD-Net", "ET", "qu")}


def _agrees(shown: str, value: float) -> bool:
    """``shown`` is ``value`` rounded to the digits it prints."""
    decimals = len(shown.split(".")[1]) if "." in shown else 0
    return abs(float(shown) - value) <= 0.5 * 10 ** -decimals + 1e-12


def test_demo_findings_and_summary_json(demo_run: Path) -> None:
    findings = collect_findings(demo_run, FINDINGS)
    assert [s.key for s in findings] == ["cardiac", "transfer", "hadnet"]
    build_report(demo_run, findings=findings, title="demo")
    summary = json.loads((demo_run / "summary.json").read_text())
    values = {h["key"]: h["value"] for s in summary["studies"] for h in s["headlines"]}
    expected = expected_headlines(demo_run)
    assert set(values) == set(expected)
    for key, want in expected.items():
        assert values[key] == (None if want is None else pytest.approx(want, abs=1e-9)), key
    heads = {h["key"]: h for s in summary["studies"] for h in s["headlines"]}
    # published anchors from the specs, n, spread and a verdict for each
    assert heads["cardiac.ef_error"]["published"] == 3.64
    assert heads["cardiac.ef_error_label_source"]["published"] == 5.42
    assert heads["transfer.tl2_lv"]["published"] == 0.900 and heads["transfer.r_lv"]["published"] == 0.880
    assert heads["cardiac.ef_error"]["n"] == 3 and heads["cardiac.ef_error"]["spread"] > 0
    assert heads["cardiac.ef_error"]["verdict"] == "too few patients to compare"
    assert heads["transfer.tl_lv"]["missing"] == "not run: no ImageNet weights"
    assert heads["transfer.tl2_lv"]["n"] == 24 and "student" in heads["hadnet.et_dice"]["compare"]
    assert "+16 to +26 %" in heads["hadnet.et_dice"]["published_text"]
    # the evaluation's paired statistics are carried when present
    et = PAIRED.iloc[0]
    assert heads["hadnet.et_dice"]["ci"] == pytest.approx([et.ci_low, et.ci_high])
    assert heads["hadnet.et_dice"]["p_value"] == pytest.approx(et.p_value)
    v1 = TRANSFER_PAIRED.iloc[1]
    assert heads["transfer.tl2_minus_r"]["ci"] == pytest.approx([v1.ci_low, v1.ci_high])
    assert "The 95 % CI of TL2 − R excludes 0" in heads["transfer.tl2_minus_r"]["detail"]
    assert "The 95 % CI of HAD-Net − student excludes 0" in heads["hadnet.et_dice"]["detail"]
    assert summary["studies"][0]["key_figure"] == "evaluate/figures/bland_altman_ef.png"


def test_demo_page_order_units_and_files(demo_run: Path) -> None:
    page = build_report(demo_run, studies=FINDINGS, title="demo")
    text = page.read_text()
    order = [text.index(s) for s in (
        'id="answer-cardiac"', 'id="answer-transfer"', 'id="answer-hadnet"',
        'id="evidence-cardiac"', 'id="evidence-transfer"', 'id="evidence-hadnet"',
        "Appendix: stages and timings")]
    assert order == sorted(order)
    for expected in ("EF points", "HD95 per model and region (mm)", "Dice per model and region",
                     "Test Dice by training subset and initialisation",
                     "HAD-Net − student: 95 % CI 0.021 to 0.103, p = 0.012",
                     "not run: no ImageNet weights", "<details>",
                     'href="transfer/evaluate/confusion.csv"', "Hyperparameter search",
                     "Volunteers per split", "Files in hadnet_evaluate", "paired stats"):
        assert expected in text, expected
    # the old labels record reads as values, digests are gone
    assert "LabelsSummary" not in text and "ab" * 32 not in text and "stacks 11" in text
    # figures sit next to their tables: the Dice box plot in the Dice section, before the HD95 one
    dice_sec = text.index("Dice per model and region")
    assert text.index("hadnet_evaluate__dice.png", dice_sec) < text.index("HD95 per model and region")


def test_closing_table_of_demo_run_fits_100_columns(demo_run: Path) -> None:
    findings = collect_findings(demo_run, FINDINGS)
    lines = closing_lines(findings, stage_records(demo_run), "demo", demo_run)
    assert len(lines) == 2 + sum(len(s.headlines) for s in findings)
    for line in lines:
        assert len(line) <= 100, line
        assert not any(p.search(line) for p in REPR), line
    body = "\n".join(lines)
    assert "EF error, best model" in body and "3.64" in body and "too few patients" in body
    assert "Dice LV, TL2 (full)" in body and "0.900" in body and "not run" in body
    # a run without findings closes with its stages, also readable and short
    lines = closing_lines([], stage_records(demo_run), "x", demo_run)
    assert any(line.startswith("tune ") and "tune-best-1" in line for line in lines)
    assert all(len(line) <= 100 and not any(p.search(line) for p in REPR) for line in lines)


def test_a_broken_study_file_keeps_the_page(tmp_path: Path) -> None:
    run = demo_like_run(tmp_path / "run")
    (run / "hadnet_evaluate" / "scores_summary.csv").write_text("model,region\nHAD-Net\n")
    (run / "evaluate" / "ef_table.csv").write_text("")
    dice = run / "transfer" / "evaluate" / "dice_table.csv"
    dice.write_text(dice.read_text().replace("0.8336", "eight"))     # the transfer code raises
    page = build_report(run, studies=FINDINGS)
    text = page.read_text()
    assert "transfer: results not readable" in text and "ValueError" in text
    assert "evaluate/ef_table.csv is empty, unreadable or lacks the columns" in text
    assert "hadnet_evaluate/scores_summary.csv is empty, unreadable or lacks" in text
    assert "Appendix: stages and timings" in text and "Files in evaluate" in text
    summary = json.loads((run / "summary.json").read_text())
    assert [(s["key"], len(s["headlines"])) for s in summary["studies"]] == [
        ("cardiac", 0), ("transfer", 0), ("hadnet", 0)]


# --- in the browser ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def chromium() -> str:
    path = chromium_path()
    if path is None:
        pytest.fail("chromium is not installed: `make browser` (apt-get install -y chromium)")
    return path


def test_demo_page_in_headless_browser(demo_run: Path, chromium: str, tmp_path: Path) -> None:
    page = build_report(demo_run, studies=FINDINGS, title="demo")
    res = load_page(page, tmp_path / "shot.png", evaluate=FACTS_JS)
    assert res.console_errors == []
    assert res.requests and all(u.startswith("file://") for u in res.requests), res.requests
    assert res.check["broken"] == [], res.check
    assert res.check["scripts"] == 0 and res.check["links"] == 0
    assert res.check["images"] >= 12
    # no repr, <= 4 significant digits, figures in their table's section, unique titles,
    # every headline on the first 1280 x 800 screen
    assert page_problems(res.facts) == []
    shown = shown_headlines(res.facts)
    expected = expected_headlines(demo_run)
    assert set(shown) == set(expected)
    for key, want in expected.items():
        if want is None:
            assert shown[key] is None, key
        else:
            assert shown[key] is not None and _agrees(shown[key], want), (key, shown[key], want)
    published = {r["key"]: r["published"] for r in res.facts["rows"]}
    assert published["cardiac.ef_error"] == "3.64" and published["transfer.r_lv"] == "0.880"
    assert (tmp_path / "shot.png").stat().st_size > 10_000


def test_demo_page_prints_with_folded_tables_open(demo_run: Path, chromium: str) -> None:
    page = build_report(demo_run, studies=FINDINGS, title="demo")
    screen = load_page(page, evaluate=FACTS_JS).facts["folded"]
    printed = load_page(page, evaluate=FACTS_JS, media="print").facts
    tables = [i for i, v in enumerate(screen) if v is not None]
    assert len(tables) >= 3 and not any(screen[i] for i in tables)    # folded on screen
    assert all(printed["folded"][i] for i in tables)                     # shown on paper
    assert page_problems(printed, first_screen=False) == []


def test_generic_page_in_headless_browser(run_dir: Path, chromium: str) -> None:
    page = build_report(run_dir)
    res = load_page(page, evaluate=FACTS_JS)
    assert res.console_errors == [] and res.check["broken"] == []
    assert res.check["images"] >= 4          # 2 figures + Optuna history + importances
    assert res.check["scripts"] == 0
    assert page_problems(res.facts, first_screen=False) == []
    assert shown_headlines(res.facts) == {}


def test_page_checks_catch_problems(tmp_path: Path, chromium: str) -> None:
    """The checks can fail: a repr, a long number, a figure away from its table, a repeated
    title, a headline below the first screen, a missing image, a remote request, a console error."""
    bad = tmp_path / "bad.html"
    bad.write_text(
        '<!DOCTYPE html><html><body><img src="missing.png">'
        '<img src="http://127.0.0.1:9/x.png"><script>console.error("boom")</script>'
        "<p>summary=LabelsSummary(out_dir='x')</p><p>0.26790340065956114</p>"
        '<section id="a"><h2>T</h2><table id="t1"><tr><td>1</td></tr></table></section>'
        '<section id="b"><h2>T</h2><figure data-table="t1"><figcaption>f</figcaption></figure>'
        '<div style="height:900px"></div><table><tr data-key="k"><td class="hl-value">'
        '<span class="v">1.5</span></td></tr></table></section></body></html>')
    res = load_page(bad, evaluate=FACTS_JS)
    assert len(res.check["broken"]) == 2
    assert any(u.startswith("http://127.0.0.1:9") for u in res.requests)
    assert res.console_errors
    problems = "\n".join(page_problems(res.facts))
    for expected in ("repr-like text", "more than 4 significant digits: 0.26790340065956114",
                     "is not in its section", "title used twice", "below the first screen"):
        assert expected in problems, (expected, problems)


def test_significant_digit_rule() -> None:
    from tests.report.checks import NUMBER, significant_digits

    assert [significant_digits(t) for t in ("0.0006616", "37.06", "1234", "12345", "3.2e-05")] \
        == [4, 4, 4, 5, 2]
    # names are not numbers
    assert NUMBER.findall("HD95 of trial-0002, r34_p05_s256, 2.71 and 7T") == ["2.71"]
    assert math.isclose(float(NUMBER.findall("mean −0.5 here")[0].replace("−", "-")), -0.5)
    assert re.search(REPR[0], "Bland-Altman (EF)") is None
