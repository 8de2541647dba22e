"""`hpc-seg tune` as users run it: killed driver + `--resume`, and `hpc-seg study dashboard`.

Each `hpc-seg tune` subprocess starts its own local Ray (no dashboard, 2 CPUs) in its own
process group; the test kills only that group.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from contextlib import closing
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from tests.hpo.conftest import TOY, worker_env

HPC_SEG = [sys.executable, "-m", "hpc_seg.cli"]
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def _job(tmp_path: Path) -> Path:
    (tmp_path / "slices").mkdir()
    job = tmp_path / "job.toml"
    job.write_text(f"""
[job]
name = "toy_resume"
stages = ["tune"]

[train]
epochs = 3
sleep_s = 1.0

[search]
train_fn = "{TOY['train_fn']}"
train_config = "{TOY['train_config']}"
num_samples = 5
max_concurrent = 2
study_name = "resume"
num_cpus = 2
dashboard = false
space = {{ lr = {{ low = 3e-4, high = 3e-3, log = true }} }}
data = {{ slices_dir = "{tmp_path / 'slices'}" }}
asha = {{ grace_period = 1, reduction_factor = 2 }}
""")
    return job


def _states_while_running(db: Path) -> list[str]:
    """Trial states read with plain read-only sqlite, so polling never creates Optuna's schema
    under the driver's feet."""
    try:
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as con:
            return [row[0] for row in con.execute("SELECT state FROM trials")]
    except sqlite3.Error:
        return []


def _trials(db: Path) -> list[optuna.trial.FrozenTrial]:
    try:
        return optuna.load_study(study_name="resume", storage=f"sqlite:///{db}").trials
    except KeyError:  # study not created yet
        return []


def _kill_group(proc: subprocess.Popen) -> None:
    """Kill what is left of a subprocess we started (its own session), and its Ray temp folder."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    for session in Path("/tmp/ray").glob(f"session_*_{proc.pid}"):
        shutil.rmtree(session, ignore_errors=True)


@pytest.mark.ray
@pytest.mark.slow
def test_killed_driver_resumes_where_it_left_off(tmp_path):
    job, out = _job(tmp_path), tmp_path / "search"
    db = out / "study.db"
    cmd = [*HPC_SEG, "tune", str(job), "--out", str(out)]
    log1 = (tmp_path / "run1.log").open("w")
    proc = subprocess.Popen(cmd, env=worker_env(), cwd=tmp_path, stdout=log1, stderr=log1,
                            start_new_session=True)
    try:
        deadline = time.time() + 180
        while time.time() < deadline:
            states = _states_while_running(db) if db.exists() else []
            if {"COMPLETE", "PRUNED"} & set(states) and "RUNNING" in states:
                break
            assert proc.poll() is None, (tmp_path / "run1.log").read_text()[-3000:]
            time.sleep(0.3)
        else:
            pytest.fail("no finished trial within 180 s")
        os.kill(proc.pid, signal.SIGKILL)  # the driver only...
        proc.wait(timeout=30)
    finally:
        time.sleep(1)
        _kill_group(proc)  # ...then whatever of its Ray was left in its process group
    before = {t.number: t for t in _trials(db)}
    finished_before = {n for n, t in before.items() if t.state in FINISHED}
    running_before = {n for n, t in before.items() if t.state == TrialState.RUNNING}
    assert finished_before and running_before

    refused = subprocess.run(cmd, env=worker_env(), cwd=tmp_path, capture_output=True, text=True,
                             timeout=120)
    assert refused.returncode == 2 and "pass --resume" in refused.stderr

    resumed = subprocess.Popen([*cmd, "--resume"], env=worker_env(), cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    try:
        output, _ = resumed.communicate(timeout=300)
    finally:
        _kill_group(resumed)
    assert resumed.returncode == 0, output[-3000:]
    after = {t.number: t for t in _trials(db)}
    for n in finished_before:  # finished trials are kept as they were, not re-run
        assert after[n].state == before[n].state and after[n].value == before[n].value
        assert after[n].user_attrs["tune_trial_id"] == before[n].user_attrs["tune_trial_id"]
    for n in running_before:  # the killed driver's trials: FAIL, with the reason
        assert after[n].state == TrialState.FAIL
        assert after[n].user_attrs["failed_reason"].startswith("stale")
    assert sum(t.state in FINISHED for t in after.values()) == 5
    assert not [t for t in after.values() if t.state == TrialState.RUNNING]
    # the second driver ran a new Tune experiment holding only the new trials
    second = out / "tune" / "resume-2"
    numbers = {int(p.name.split("-")[1]) for p in second.iterdir() if p.name.startswith("trial-")}
    assert numbers and min(numbers) > max(before)
    assert "marked" in output and "stale RUNNING trial" in output
    assert "best trial #" in output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_dashboard_serves_the_study_on_localhost(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(study_name="dash", storage=url)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    port = _free_port()
    proc = subprocess.Popen([*HPC_SEG, "study", "dashboard", str(tmp_path), "--port", str(port)],
                            env=worker_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        first = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}/dashboard/" in first
        deadline, body = time.time() + 60, None
        while time.time() < deadline and body is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=5) as r:
                    body = json.loads(r.read())
            except OSError:
                time.sleep(0.3)
        assert body and body["study_summaries"][0]["study_name"] == "dash"
    finally:
        _kill_group(proc)
        proc.wait(timeout=30)
