"""`hpc-seg run`: stages chain, a re-run skips finished stages, and bad job files fail clearly."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from hpc_seg.cli import main
from hpc_seg.config import load_toml
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
    # the run ends with its headlines, one line each, then the report's path
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed[-1] == f"report: {out.resolve() / 'report.html'}"
    _check_closing_table(printed[:-1], out)
    assert "HAD-Net brain tumour segmentation" in (out / "report.html").read_text()
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


def _check_closing_table(lines: list[str], out: Path) -> None:
    """The closing table: every line within 100 columns and free of reprs; the HAD-Net
    headlines there and in summary.json are the evaluation's numbers."""
    import pandas as pd

    from tests.report.checks import REPR

    table = lines[lines.index(next(x for x in lines if x.startswith("hpc-seg 'hadnet_debug'"))):]
    assert all(len(x) <= 100 for x in table), [x for x in table if len(x) > 100]
    assert not [x for x in table if any(p.search(x) for p in REPR)]
    summary = pd.read_csv(out / "hadnet_evaluate" / "scores_summary.csv")
    et = summary[(summary.model == "HAD-Net") & (summary.region == "ET") & (summary.metric == "dice")]
    want = float(et["mean"].iloc[0])
    row = next(x for x in table if x.startswith("hadnet") and "ET Dice, HAD-Net" in x)
    assert f"{want:.3f}" in row, (row, want)
    heads = {h["key"]: h for s in json.loads((out / "summary.json").read_text())["studies"]
             for h in s["headlines"]}
    assert heads["hadnet.et_dice"]["value"] == pytest.approx(want)
    assert heads["hadnet.et_dice"]["n"] == int(et["n"].iloc[0])


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
    listed = [line.split()[1] for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert {"ingest", "tune", "evaluate", "hadnet_distill", "hadnet_evaluate"} <= set(listed)
    assert listed == load_toml(REPO / "jobs" / "demo.toml")["job"]["stages"]   # each, in order


# --- a job file is checked as a whole before its first stage runs ---------------------------

TINY_CINE = '[synth_cine]\npatients = 1\nn_frames = 4\nmax_matrix = 32\nno_random_quirks = true\nworkers = 1\n'


@pytest.mark.parametrize("body, message", [
    ('stages = ["synth_cine", "slices"]\n' + TINY_CINE.replace("patients = 1", 'patients = "two"'),
     r"\[synth_cine\]\.patients: expected int, but got 'two'"),
    ('stages = ["synth_cine", "ingest", "labels", "slices"]\n' + TINY_CINE
     + '[slices]\nimage_size = "big"\n', r"\[slices\]\.image_size: expected int, but got 'big'"),
    ('stages = ["synth_cine", "ingest"]\n' + TINY_CINE + '[ingset]\nworkers = 1\n',
     r"unknown table\(s\) \[ingset\] \(did you mean \[ingest\]\?\); valid tables are \[.*'ingest'"),
    # without synth_cine in the job, ingest misses its src: the misspelt table is named first
    ('stages = ["ingest"]\n[ingset]\nsrc = "/nowhere"\n',
     r"unknown table\(s\) \[ingset\] \(did you mean \[ingest\]\?\)"),
    ('stages = ["synth_cine", "labels"]\n' + TINY_CINE, r"needs stage 'ingest'"),
    ('stages = ["synth_cine", "evaluate"]\n' + TINY_CINE + '[evaluate]\nsplitt = "test"\n',
     r"\[evaluate\]: unknown key\(s\) \['splitt'\]"),
])
def test_job_errors_come_before_any_stage_runs(tmp_path: Path, capsys, body, message) -> None:
    job = _write(tmp_path / "j.toml", '[job]\nname = "x"\n' + body)
    assert main(["run", str(job), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"hpc-seg: error: {job}")
    assert re_search(message, err[0]), err[0]
    assert not (tmp_path / "o").exists()          # synth_cine did not run first


def test_a_folder_given_as_job_file_is_one_line(tmp_path: Path, capsys) -> None:
    assert main(["run", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"hpc-seg: error: {tmp_path}: is a folder, not a job file (give a .toml file)"]


def test_every_registered_stage_checks_up_front_and_demo_jobs_pass() -> None:
    from hpc_seg.pipeline.job import JobSection, plan_job
    from hpc_seg.pipeline.registry import STAGES
    from hpc_seg.config import from_dict, load_toml

    for job_file in sorted((REPO / "jobs").glob("*.toml")):
        tables = load_toml(job_file)
        job = from_dict(JobSection, tables["job"], str(job_file))
        plans = plan_job(job_file, tables, Path("/nonexistent"), [(n, STAGES[n]) for n in job.stages])
        assert set(plans) == set(job.stages)


def re_search(pattern: str, text: str) -> bool:
    import re
    return re.search(pattern, text) is not None


# --- a finished stage is re-run when its config or inputs change ----------------------------

def test_stage_records_are_reused_only_while_inputs_and_config_match(tmp_path: Path, caplog) -> None:
    import logging

    caplog.set_level(logging.INFO, logger="hpc_seg.pipeline.runner")
    out = tmp_path / "o"
    body = '[job]\nname = "x"\nstages = ["synth_cine", "ingest"]\n' + TINY_CINE + \
        '[ingest]\nworkers = 1\n'
    job = _write(tmp_path / "j.toml", body)
    assert run_job(job, out=out) == 0
    first = json.loads((out / ".stages" / "ingest.json").read_text())["fingerprint"]

    caplog.clear()
    assert run_job(job, out=out) == 0                 # nothing changed: both stages skipped
    assert caplog.text.count("already finished") == 2 and "running it again" not in caplog.text

    caplog.clear()                                    # an input file changed: ingest re-runs
    dcm = sorted((out / "cohort").rglob("*.dcm"))[0]
    dcm.write_bytes(dcm.read_bytes() + b"\0")
    assert run_job(job, out=out) == 0
    assert "stage synth_cine           already finished" in caplog.text
    assert "ingest               finished before, but its config or inputs changed" in caplog.text
    second = json.loads((out / ".stages" / "ingest.json").read_text())["fingerprint"]
    assert second != first

    caplog.clear()                                    # its config changed: ingest re-runs
    _write(job, body.replace("[ingest]\nworkers = 1", "[ingest]\nworkers = 1\nshard_mb = 64.0"))
    assert run_job(job, out=out) == 0
    assert "ingest               finished before, but its config or inputs changed" in caplog.text
