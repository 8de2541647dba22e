"""`hpc-seg run`: stages chain, a re-run skips finished stages, and bad job files fail clearly."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from hpc_seg.cli import main
from hpc_seg.errors import ConfigError
from hpc_seg.pipeline.job import run_job

REPO = Path(__file__).resolve().parents[2]


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_hadnet_debug_job_runs_and_rerun_skips_finished_stages(tmp_path: Path, capsys) -> None:
    job = REPO / "jobs" / "hadnet_debug.toml"
    out = tmp_path / "run"
    assert run_job(job, out=out) == 0
    # the run ends with its report, whose path is the last line printed
    assert capsys.readouterr().out.strip().splitlines()[-1] == f"report: {out.resolve() / 'report.html'}"
    assert "Dice (HAD-Net)" in (out / "report.html").read_text()
    records = sorted(p.stem for p in (out / ".stages").glob("*.json"))
    assert records == sorted(["synth_brats", "hadnet_preprocess", "hadnet_pretrain_teacher",
                              "hadnet_pretrain_student", "hadnet_distill_ad", "hadnet_distill",
                              "hadnet_evaluate"])
    evaluate = json.loads((out / ".stages" / "hadnet_evaluate.json").read_text())["result"]
    assert Path(evaluate["table"]).is_file()
    assert {"dice_HAD-Net_ET", "dice_teacher_WT"} <= set(evaluate)
    teacher = out / "hadnet_pretrain_teacher" / "best.pt"
    before = teacher.stat().st_mtime_ns

    # Drop the last stage's record: a re-run must redo only that stage.
    (out / ".stages" / "hadnet_evaluate.json").unlink()
    shutil.rmtree(out / "hadnet_evaluate")
    assert run_job(job, out=out) == 0
    assert teacher.stat().st_mtime_ns == before
    assert (out / "hadnet_evaluate" / "dice_summary.csv").is_file()


def test_unknown_stage_names_the_valid_ones(tmp_path: Path) -> None:
    job = _write(tmp_path / "j.toml", '[job]\nname = "x"\nstages = ["ingest", "trian"]\n')
    with pytest.raises(ConfigError, match=r"unknown stage\(s\) \['trian'\]; valid stages are"):
        run_job(job, out=tmp_path / "o")


def test_unknown_key_in_a_stage_table_names_file_and_key(tmp_path: Path) -> None:
    job = _write(tmp_path / "j.toml", '[job]\nname = "x"\nstages = ["synth_brats"]\n'
                 '[synth_brats]\ncases = 2\ncasse = 3\n')
    with pytest.raises(ConfigError, match=r"j.toml: \[synth_brats\]: unknown key\(s\) \['casse'\]"):
        run_job(job, out=tmp_path / "o")


def test_stage_needing_an_earlier_stage_says_which(tmp_path: Path) -> None:
    job = _write(tmp_path / "j.toml", '[job]\nname = "x"\nstages = ["labels"]\n')
    with pytest.raises(ConfigError, match="needs stage 'ingest'"):
        run_job(job, out=tmp_path / "o")


def test_cli_reports_missing_job_file_in_one_line(tmp_path: Path, capsys) -> None:
    assert main(["run", str(tmp_path / "nope.toml")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"hpc-seg: error: {tmp_path / 'nope.toml'}: job file not found"]


def test_demo_job_lists_both_studies(capsys) -> None:
    assert main(["run", str(REPO / "jobs" / "demo.toml"), "--list"]) == 0
    out = capsys.readouterr().out
    for stage in ("ingest", "tune", "evaluate", "hadnet_distill", "hadnet_evaluate"):
        assert stage in out
