"""The HTML report over a run folder, checked in a real headless Chromium."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from hpc_seg.errors import InputError
from hpc_seg.report.page import build_report
from hpc_seg.storage.shards import atomic_write_table
from tests.report.browser import chromium_path, load_page


def _png(path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [1, 0])
    fig.savefig(path)
    plt.close(fig)


def _study(db: Path) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name="search", storage=f"sqlite:///{db}",
                                sampler=optuna.samplers.RandomSampler(seed=0))

    def objective(trial: optuna.Trial) -> float:
        lr = trial.suggest_float("lr", 1e-4, 1e-2, log=True)
        loss = trial.suggest_categorical("loss", ["ce", "focal"])
        if trial.number == 3:
            raise optuna.TrialPruned()
        return lr * (2 if loss == "ce" else 1)

    study.optimize(objective, n_trials=6)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("run")
    (run / ".stages").mkdir()
    for i, name in enumerate(["ingest", "tune", "evaluate"]):
        (run / ".stages" / f"{name}.json").write_text(json.dumps(
            {"stage": name, "seconds": 1.5 * (i + 1), "result": {"out": str(run / name)}}))
    (run / "evaluate").mkdir()
    pd.DataFrame({"model": ["best"], "ef_mae": [3.2], "ef_r": [0.91]}).to_csv(
        run / "evaluate" / "ef_table.csv", index=False)
    pd.DataFrame({"model": ["best"], "dice_lv": [0.93]}).to_csv(
        run / "evaluate" / "dice_table.csv", index=False)
    (run / "transfer").mkdir()   # a table the report does not know by name: shown generically
    pd.DataFrame({"target": ["7t"], "gain": [0.05]}).to_csv(run / "transfer" / "gains_xyz.csv",
                                                            index=False)
    _png(run / "evaluate" / "figures" / "volumes.png")
    _png(run / "hadnet" / "dice.png")
    issues = pa.table({"subject_id": ["1", "1", "2"], "patient_id": ["1", "1", "2"],
                       "problem": ["missing_frames", "missing_frames", "not_dicom"],
                       "resolution": ["filled", "filled", "file skipped"],
                       "file": ["a", "b", "c"], "detail": ["", "", ""]})
    atomic_write_table(issues, run / "ingest" / "issues" / "part-0.parquet")
    (run / "tune").mkdir()
    _study(run / "tune" / "study.db")
    with sqlite3.connect(run / "tune" / "lineage.sqlite") as con:
        con.execute("CREATE TABLE tasks (job_id TEXT, name TEXT, executor TEXT, state TEXT, "
                    "node TEXT, started_at TEXT, ended_at TEXT, exit_reason TEXT, restarts INTEGER)")
        con.execute("INSERT INTO tasks VALUES ('41_0','predict','slurm','COMPLETED','n1',"
                    "'2026-01-01T00:00:00+00:00','2026-01-01T00:01:30+00:00','ok',0)")
        con.execute("INSERT INTO tasks VALUES ('41_1','predict','slurm','TIMEOUT','n2',"
                    "'2026-01-01T00:00:00+00:00','2026-01-01T01:00:00+00:00','TIMEOUT 0:0',1)")
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


def test_report_content(run_dir: Path) -> None:
    page = build_report(run_dir)
    text = page.read_text()
    assert page == run_dir / "report.html"
    for expected in ("Stages and timings", "EF agreement (cardiac)", "Dice (cardiac)",
                     "gains xyz", "Optuna study", "Best trial", "Pruned or failed trials",
                     "41_1", "TIMEOUT", "missing_frames", "hpc-seg study dashboard"):
        assert expected in text, expected
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
    assert any(f.endswith("volumes.png") for f in files)


def test_report_of_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="run folder not found"):
        build_report(tmp_path / "nope")


@pytest.fixture(scope="module")
def chromium() -> str:
    path = chromium_path()
    if path is None:
        pytest.fail("chromium is not installed: `make browser` (apt-get install -y chromium)")
    return path


def test_report_in_headless_browser(run_dir: Path, chromium: str, tmp_path: Path) -> None:
    page = build_report(run_dir)
    res = load_page(page, tmp_path / "shot.png")
    assert res.console_errors == []
    assert res.requests and all(u.startswith("file://") for u in res.requests), res.requests
    assert res.check["broken"] == [], res.check
    assert res.check["images"] >= 4          # 2 figures + Optuna history + importances
    assert res.check["tables"] >= 6
    assert res.check["scripts"] == 0
    assert "Optuna study" in res.check["sections"]
    assert (tmp_path / "shot.png").stat().st_size > 10_000


def test_browser_check_catches_problems(tmp_path: Path, chromium: str) -> None:
    """The checks above can fail: a missing image, a remote request and a console error."""
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><html><body><img src="missing.png">'
                   '<img src="http://127.0.0.1:9/x.png"><script>console.error("boom")</script>'
                   "</body></html>")
    res = load_page(bad)
    assert len(res.check["broken"]) == 2
    assert any(u.startswith("http://127.0.0.1:9") for u in res.requests)
    assert res.console_errors
