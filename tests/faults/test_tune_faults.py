"""Faults in `hpc-seg run` of a search: Ctrl-C and kill -9 of the driver while trials run.

The search is a grid of toy trials (tests/hpo/toy_trainer.py) without early stopping, so every
finished trial's value is known in advance and a resumed study can be compared with a clean one
trial by trial.
"""

from __future__ import annotations

import json
import signal
import sqlite3
from contextlib import closing
from pathlib import Path

import optuna
import pytest

from tests.faults.conftest import session_processes

pytestmark = [pytest.mark.faults, pytest.mark.ray]

GRID = [("a", {"lr": 1e-3}), ("b", {"lr": 3e-4}), ("c", {"lr": 2e-3}), ("d", {"lr": 5e-4})]


def toy_grid() -> list[tuple[str, dict]]:
    """The fixed runs of the test search (``[search] grid``): the published baseline, 4 lrs."""
    from hpc_seg.cardiac.search_space import BASELINE

    return [(name, {**BASELINE, **p}) for name, p in GRID]


def write_job(tmp_path: Path) -> Path:
    (tmp_path / "slices").mkdir(exist_ok=True)
    job = tmp_path / "job.toml"
    job.write_text(f"""
[job]
name = "faults"
stages = ["tune"]

[train]
epochs = 2
sleep_s = 0.4

[search]
train_fn = "tests.hpo.toy_trainer:toy_train"
train_config = "tests.hpo.toy_trainer:ToyConfig"
mode = "grid"
grid = "tests.faults.test_tune_faults:toy_grid"
num_samples = 4
max_concurrent = 1
study_name = "faults"
num_cpus = 1
dashboard = false
space = {{ lr = [1e-3, 3e-4, 2e-3, 5e-4] }}
data = {{ slices_dir = "{tmp_path / 'slices'}" }}
asha = {{ grace_period = 2, reduction_factor = 2 }}
""")
    return job


def states(db: Path) -> list[str]:
    """Trial states read with read-only sqlite (polling never creates the schema)."""
    if not db.exists():
        return []
    try:
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as con:
            return [row[0] for row in con.execute("SELECT state FROM trials")]
    except sqlite3.Error:
        return []


def finished(db: Path) -> dict[str, float]:
    study = optuna.load_study(study_name="faults", storage=f"sqlite:///{db}")
    return {t.user_attrs["fixed_point"]: round(t.value, 6) for t in study.trials
            if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)}


@pytest.mark.parametrize("fault", ["sigint", "kill9"])
def test_interrupted_search_is_not_recorded_and_resumes(tmp_path, runs, fault):
    """Ctrl-C: exit 130, no stage record, no RUNNING trial, no Ray left. kill -9: the next run
    stops the dead driver's Ray leftovers. Either way the re-run finishes the same grid with the
    same values as a clean run would."""
    job, out = write_job(tmp_path), tmp_path / "out"
    db = out / "tune" / "study.db"
    first = runs(["run", job, "--out", out], f"first-{fault}")
    first.wait_for(lambda: "RUNNING" in states(db) and {"COMPLETE", "PRUNED"} & set(states(db)),
                   240, "a finished and a running trial")
    if fault == "sigint":
        first.signal(signal.SIGINT)                     # Ctrl-C: the whole process group
        assert first.finish() == 130, first.output()[-3000:]
        assert "interrupted" in first.output()
        assert session_processes(first.sid) == [], "Ray processes outlived a Ctrl-C'd driver"
    else:
        first.signal(signal.SIGKILL, group=False)       # the driver only; its Ray stays behind
        first.finish()
    assert not (out / ".stages" / "tune.json").exists()
    if fault == "sigint":
        assert "RUNNING" not in states(db)

    again = runs(["run", job, "--out", out], f"again-{fault}")
    assert again.finish(240) == 0, again.output()[-3000:]
    assert session_processes(first.sid) == [], "leftovers of the killed run were not stopped"
    assert session_processes(again.sid) == []
    record = json.loads((out / ".stages" / "tune.json").read_text())["result"]
    assert record["model"] != "None" and Path(record["model"]).is_file()
    assert "RUNNING" not in states(db)
    from tests.hpo.toy_trainer import toy_dice
    clean = {name: round(toy_dice(p["lr"], 2), 6) for name, p in GRID}
    assert finished(db) == clean                        # metric dice_fg, known per lr
