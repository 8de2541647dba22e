"""Optuna storage: URLs, and stale RUNNING trials of dead drivers marked FAIL (no Ray)."""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from hpc_seg.errors import ConfigError
from hpc_seg.hpo.storage import (default_storage_url, driver_identity, end_interrupted_session,
                                 fail_stale_trials, open_storage, redact)


def _dead_driver() -> dict:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return {"host": socket.gethostname(), "pid": proc.pid, "start": "0"}


def test_stale_running_trials_of_dead_drivers_become_fail(tmp_path):
    url = default_storage_url(tmp_path / "sub")
    assert url == f"sqlite:///{tmp_path / 'sub' / 'study.db'}"
    storage = open_storage(url)
    study = optuna.create_study(study_name="s", storage=storage)
    attrs = [
        {"driver": _dead_driver(), "heartbeat": time.time()},                    # dead here: stale
        {"driver": driver_identity(), "heartbeat": time.time()},                 # alive: kept
        {"driver": {**driver_identity(), "start": "1"}, "heartbeat": time.time()},  # pid reused
        {"driver": {"host": "elsewhere", "pid": 1, "start": "1"}, "heartbeat": time.time()},
        {"driver": {"host": "elsewhere", "pid": 1, "start": "1"}, "heartbeat": time.time() - 7200},
        {},                                                                      # no record: stale
    ]
    for a in attrs:
        t = study.ask()
        for k, v in a.items():
            t.set_user_attr(k, v)
    done = study.ask()
    study.tell(done, 1.0)
    failed = fail_stale_trials(storage, "s", stale_after_s=900)
    assert failed == [0, 2, 4, 5]
    states = [t.state for t in study.trials]
    assert states == [TrialState.FAIL, TrialState.RUNNING, TrialState.FAIL, TrialState.RUNNING,
                      TrialState.FAIL, TrialState.FAIL, TrialState.COMPLETE]
    assert study.trials[0].user_attrs["failed_reason"].startswith("stale")
    assert fail_stale_trials(storage, "s", stale_after_s=900) == []


def test_storage_url_errors_name_the_url(tmp_path):
    with pytest.raises(ConfigError, match="expected a database URL"):
        open_storage(str(tmp_path / "study.db"))
    with pytest.raises(ConfigError, match=r"postgresql://me:\*\*\*@db/x: PostgreSQL needs "
                                          r"psycopg2|postgresql://me:\*\*\*@db/x: cannot open"):
        open_storage("postgresql://me:secret@db/x")
    assert redact("postgresql://me:secret@db/x") == "postgresql://me:***@db/x"


def test_fail_own_trials_leaves_other_drivers_alone(tmp_path):
    """After Ctrl-C the driver fails its own RUNNING trials (and ownerless ones), not others'."""
    import optuna
    from optuna.trial import TrialState

    from hpc_seg.hpo.storage import driver_identity, fail_own_trials, open_storage

    storage = open_storage(f"sqlite:///{tmp_path / 'study.db'}")
    study = optuna.create_study(study_name="s", storage=storage)
    mine, other, orphan = study.ask(), study.ask(), study.ask()
    mine.set_user_attr("driver", driver_identity())
    other.set_user_attr("driver", {"host": "elsewhere", "pid": 1, "start": "0"})
    assert sorted(fail_own_trials(storage, "s", "driver stopped")) == [mine.number, orphan.number]
    states = {t.number: t.state for t in study.get_trials()}
    assert states == {mine.number: TrialState.FAIL, other.number: TrialState.RUNNING,
                      orphan.number: TrialState.FAIL}


def test_a_locked_database_is_retried_and_then_reported():
    import optuna
    import pytest

    from hpc_seg.hpo.storage import _retry_locked

    calls = []

    def locked_twice():
        calls.append(1)
        if len(calls) < 3:
            raise optuna.exceptions.StorageInternalError("database is locked")
        return "written"

    assert _retry_locked(locked_twice, first_wait_s=0.001) == "written" and len(calls) == 3

    def always_locked():
        raise optuna.exceptions.StorageInternalError("database is locked")

    with pytest.raises(optuna.exceptions.StorageInternalError):
        _retry_locked(always_locked, tries=3, first_wait_s=0.001)


def _writable(db: Path) -> bool:
    """Whether another connection can take SQLite's write lock on ``db`` now."""
    con = sqlite3.connect(db, timeout=0.2)
    try:
        con.execute("BEGIN IMMEDIATE")
        con.rollback()
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        con.close()


def test_an_interrupted_session_no_longer_holds_the_write_lock(tmp_path):
    """A Ctrl-C inside a commit can leave the driver's session in a write transaction: the FAIL
    writes after the interrupt must not wait behind it."""
    from sqlalchemy import text

    db = tmp_path / "study.db"
    storage = open_storage(f"sqlite:///{db}")
    study = optuna.create_study(study_name="s", storage=storage)
    session = storage.scoped_session()
    session.execute(text("UPDATE studies SET study_name = study_name"))   # write lock, no commit

    assert not _writable(db)
    end_interrupted_session(study._storage)         # through the study's cached wrapper too
    assert _writable(db)
    end_interrupted_session(storage)                # nothing open: a no-op
    assert _writable(db)


def test_a_pooled_connection_left_in_a_write_transaction_is_released(tmp_path, monkeypatch):
    """An interrupt during the pool's check-in can return a connection without its rollback
    (seen with SIGINTs at random moments of Optuna writes): a FAIL write after it must not wait
    behind that connection's write lock, and the storage must still work afterwards."""
    db = tmp_path / "study.db"
    storage = open_storage(f"sqlite:///{db}")
    study = optuna.create_study(study_name="s", storage=storage)
    trial_id = study.ask()._trial_id
    conn = storage.engine.pool.connect()
    conn.dbapi_connection.execute("BEGIN IMMEDIATE")                 # holds the write lock
    monkeypatch.setattr(storage.engine.dialect, "do_rollback", lambda dbapi_conn: None)
    conn.close()                                                     # checked in, still locked
    monkeypatch.undo()
    assert storage.engine.pool.checkedin() >= 1

    assert not _writable(db)
    end_interrupted_session(storage)
    assert _writable(db)
    storage.set_trial_user_attr(trial_id, "failed_reason", "driver stopped")
    assert study.trials[0].user_attrs["failed_reason"] == "driver stopped"
