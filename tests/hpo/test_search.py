"""A 4-trial toy search on a local Ray: study states, per-epoch values, ASHA PRUNED, Tune links.

The toy trainer's Dice depends only on the learning rate, and trials run one at a time, so ASHA's
decisions are known: trial 0 (lr 1e-3) is the best and completes; trial 1 (lr 0.1, far outside the
sampled range) is the worst at the first rung and is stopped there.
"""

from __future__ import annotations

import json
import logging
import subprocess
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from hpc_seg.cli import main
from hpc_seg.errors import ConfigError, InputError, LaunchError
from hpc_seg.cardiac.search_space import published_grid
from hpc_seg.hpo.study_info import best_trial, list_studies
from hpc_seg.hpo.tuner import run_search
from tests.hpo.conftest import REPO, toy_search

pytestmark = pytest.mark.ray
OPTUNA_CLI = REPO / ".venv" / "bin" / "optuna"


@pytest.fixture(scope="module")
def toy_run(ray_session, tmp_path_factory):
    root = tmp_path_factory.mktemp("toy_search")
    (root / "slices").mkdir()
    cfg = toy_search(root / "slices", points_to_evaluate=[{"lr": 1e-3}, {"lr": 0.1}],
                     gpus_per_trial=0.25)
    logs = []
    handler = logging.Handler()
    handler.emit = lambda record: logs.append(record.getMessage())
    logging.getLogger("hpc_seg").addHandler(handler)
    try:
        result = run_search(cfg, root / "run")
    finally:
        logging.getLogger("hpc_seg").removeHandler(handler)
    return {"cfg": cfg, "root": root, "result": result, "logs": logs}


def test_study_holds_states_values_and_links(toy_run):
    result = toy_run["result"]
    study = optuna.load_study(study_name="toy", storage=result.storage)
    trials = study.trials
    assert len(trials) == 4
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    assert trials[0].state == TrialState.COMPLETE and trials[0].params["lr"] == 1e-3
    assert trials[1].state == TrialState.PRUNED and trials[1].params["lr"] == 0.1
    assert trials[1].user_attrs["stopped_at_iteration"] == 1
    assert sorted(trials[1].intermediate_values) == [1]
    for t in trials:
        a = t.user_attrs
        steps = sorted(t.intermediate_values)
        if t.state == TrialState.COMPLETE:
            assert steps == [1, 2, 3]               # every epoch, the last one included
            assert t.value == t.intermediate_values[3]
            assert Path(a["model_path"]).is_file()
            assert "stopped_at_iteration" not in a
        else:
            assert steps == list(range(1, a["stopped_at_iteration"] + 1))
            assert a["stopped_at_iteration"] < 3
            assert t.value == t.intermediate_values[steps[-1]]
        # links: Tune trial id and folder, and the checkpoint of the last epoch run
        tune_dir = Path(a["tune_trial_dir"])
        assert tune_dir.is_dir() and tune_dir.name.endswith(a["tune_trial_id"])
        progress = (tune_dir / "progress.csv").read_text().splitlines()
        assert len(progress) == 1 + len(steps)
        assert json.loads((tune_dir / "params.json").read_text())["trial_number"] == t.number
        assert Path(a["checkpoint"]).is_file() and a["checkpoint"].endswith(f"ckpt-{steps[-1]}.pt")
        # CPU-only: no GPU in this Ray, so the trainer was told to use the CPU
        assert json.loads(Path(a["checkpoint"]).read_text())["device"] == "cpu"
    assert result.best_trial == 0 and result.best_params["lr"] == 1e-3
    assert result.best_model == Path(trials[0].user_attrs["model_path"])
    assert result.states == {"COMPLETE": sum(t.state == TrialState.COMPLETE for t in trials),
                             "PRUNED": sum(t.state == TrialState.PRUNED for t in trials)}


def test_no_gpu_is_said_in_the_log(toy_run):
    assert any("no GPU" in m and "CPU-only" in m and "gpus_per_trial=0.25" in m
               for m in toy_run["logs"])


def test_optuna_cli_reads_the_storage(toy_run):
    url = toy_run["result"].storage
    out = subprocess.run([str(OPTUNA_CLI), "trials", "--study-name", "toy", "--storage", url,
                          "-f", "json"], capture_output=True, text=True, timeout=120, check=True)
    rows = json.loads(out.stdout)
    assert [r["state"] for r in rows] == [t.state.name for t in
                                          optuna.load_study(study_name="toy", storage=url).trials]
    assert rows[1]["user_attrs"]["stopped_at_iteration"] == 1
    assert rows[0]["user_attrs"]["tune_trial_id"]
    out = subprocess.run([str(OPTUNA_CLI), "studies", "--storage", url, "-f", "json"],
                         capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(out.stdout)[0]["name"] == "toy"


def test_inspection_api_and_commands(toy_run, capsys, tmp_path):
    url = toy_run["result"].storage
    [row] = list_studies(url)
    assert row["study"] == "toy" and row["trials"] == 4 and row["best_trial"] == 0
    assert row["complete"] + row["pruned"] == 4 and row["target"] == 4
    best = best_trial(url, "toy")
    assert best["number"] == 0 and best["params"]["lr"] == 1e-3
    assert sorted(best["intermediate_values"]) == [1, 2, 3]
    run_dir = str(toy_run["root"] / "run")
    assert main(["study", "show", run_dir, "--plot", str(tmp_path / "lc.png"),
                 "--csv", str(tmp_path / "t.csv")]) == 0
    shown = capsys.readouterr().out
    assert "PRUNED" in shown and "COMPLETE" in shown
    assert (tmp_path / "lc.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "t.csv").read_text().count("\n") == 5
    assert main(["study", "best", run_dir, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["user_attrs"]["model_path"].endswith("model.pt")
    assert main(["study", "list", run_dir]) == 0
    assert "toy" in capsys.readouterr().out
    assert main(["study", "show", run_dir, "--study", "nope"]) == 2
    assert "no study 'nope'" in capsys.readouterr().err


def test_finished_study_is_skipped_and_unfinished_needs_resume(toy_run):
    cfg, root = toy_run["cfg"], toy_run["root"]
    again = run_search(cfg, root / "run")  # finished: nothing runs, same answer
    assert again.states == toy_run["result"].states and again.best_trial == 0
    assert len(list((root / "run" / "tune").iterdir())) == 1
    bigger = toy_search(root / "slices", num_samples=5)
    with pytest.raises(ConfigError, match="already has 4 trial.*pass --resume"):
        run_search(bigger, root / "run")


def test_grid_mode_runs_exactly_the_published_configurations(ray_session, tmp_path):
    (tmp_path / "slices_128").mkdir()
    (tmp_path / "slices_256").mkdir()
    cfg = toy_search(tmp_path / "slices_{image_size}", mode="grid", num_samples=None,
                     max_concurrent=2, space={}, train={"epochs": 1, "sleep_s": 0.0},
                     study_name="grid")
    result = run_search(cfg, tmp_path / "run")
    study = optuna.load_study(study_name="grid", storage=result.storage)
    assert len(study.trials) == 9 and result.states == {"COMPLETE": 9}
    got = sorted((t.user_attrs["fixed_point"], tuple(sorted(t.params.items()))) for t in study.trials)
    want = sorted((name, tuple(sorted(p.items()))) for name, p in published_grid())
    assert got == want


def test_errors_before_any_trial(ray_session, tmp_path):
    with pytest.raises(InputError, match="slices_256: slices dataset not found"):
        run_search(toy_search(tmp_path / "slices_{image_size}", space={"image_size": [256]}),
                   tmp_path / "run")
    (tmp_path / "s").mkdir()
    with pytest.raises(ConfigError, match=r"trial config .*'batch_size': 'big'.*batch_size"):
        run_search(toy_search(tmp_path / "s", space={"batch_size": ["big"]}), tmp_path / "run")
    with pytest.raises(LaunchError, match="cpus_per_trial=4.0 exceeds the Ray cluster's 2 CPUs"):
        run_search(toy_search(tmp_path / "s", cpus_per_trial=4.0), tmp_path / "run2")
    study = optuna.load_study(study_name="toy", storage=f"sqlite:///{tmp_path / 'run2' / 'study.db'}")
    assert study.trials == []
