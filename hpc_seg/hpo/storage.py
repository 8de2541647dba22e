"""Optuna storage: open it from a URL, and mark trials of dead drivers as FAIL on start-up.

Only the Tune driver writes the study (the searcher runs in the driver), so a SQLite file is safe
for one driver; a PostgreSQL URL lets several drivers (and people) share one study server.

A crashed driver leaves its asked trials RUNNING for ever (ask/tell has no Optuna heartbeat). Each
trial therefore records its driver (host, pid, process start time) and a ``heartbeat`` time that
the driver refreshes; on start-up a RUNNING trial is stale when its driver ran on this host and is
gone, or when its heartbeat is older than ``stale_after_s`` (drivers on other hosts), or when it
carries no driver record at all. Trials of a live driver of a concurrent search are left alone.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any, Callable

import optuna
from optuna.storages import BaseStorage, RDBStorage
from optuna.trial import TrialState

from hpc_seg.errors import ConfigError

log = logging.getLogger(__name__)


def default_storage_url(run_dir: Path) -> str:
    """``sqlite:///<abs run_dir>/study.db``."""
    return f"sqlite:///{(Path(run_dir) / 'study.db').resolve()}"


def redact(url: str) -> str:
    """The URL without a password, for logs and errors."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}"
    return url


def open_storage(url: str) -> RDBStorage:
    """An :class:`RDBStorage` for ``url``; creates a SQLite file's folder. Errors name the URL."""
    kwargs: dict = {}
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
        # The driver and a heartbeat thread share the file: wait for locks instead of failing.
        kwargs = {"connect_args": {"timeout": 30}}
    elif url.startswith(("postgresql", "postgres")):
        try:
            import psycopg2  # noqa: F401
        except ImportError:
            raise ConfigError(f"storage {redact(url)}: PostgreSQL needs psycopg2; install "
                              "hpc-seg[postgres]") from None
    elif "://" not in url:
        raise ConfigError(f"storage: expected a database URL (sqlite:///path/study.db, "
                          f"postgresql://user@host/db), but got {url!r}")
    try:
        return RDBStorage(url, engine_kwargs=kwargs or None)
    except Exception as exc:  # sqlalchemy raises many types; the user needs the URL and cause
        raise ConfigError(f"storage {redact(url)}: cannot open: {exc}") from None


def _proc_start(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (tells a reused PID apart), or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def driver_identity() -> dict:
    """This process as a driver record: host, pid and process start time."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "start": _proc_start(os.getpid())}


def _is_stale(trial: optuna.trial.FrozenTrial, now: float, stale_after_s: float) -> bool:
    driver = trial.user_attrs.get("driver")
    if not isinstance(driver, dict):
        return True
    if driver.get("host") == socket.gethostname():
        start = _proc_start(int(driver.get("pid", -1)))
        return start is None or start != driver.get("start")
    beat = trial.user_attrs.get("heartbeat", 0.0)
    return now - float(beat) > stale_after_s


def fail_stale_trials(storage: BaseStorage, study_name: str, stale_after_s: float) -> list[int]:
    """Mark the study's stale RUNNING trials FAIL; returns their numbers."""
    study_id = storage.get_study_id_from_name(study_name)
    now, failed = time.time(), []
    for trial in storage.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
        if _is_stale(trial, now, stale_after_s):
            trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
            storage.set_trial_user_attr(trial_id, "failed_reason", "stale: driver gone")
            if storage.set_trial_state_values(trial_id, TrialState.FAIL):
                failed.append(trial.number)
    if failed:
        log.warning("study %s: marked %d stale RUNNING trial(s) as FAIL (their driver is gone): %s",
                    study_name, len(failed), failed)
    return failed


def fail_own_trials(storage: BaseStorage, study_name: str, reason: str) -> list[int]:
    """Mark FAIL the study's RUNNING trials of this driver (and any without a driver record):
    on Ctrl-C the interrupt can land between Tune ending a trial and the FAIL being written,
    and nothing may stay RUNNING."""
    me = driver_identity()
    study_id = storage.get_study_id_from_name(study_name)
    failed = []
    for trial in storage.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
        driver = trial.user_attrs.get("driver")
        if isinstance(driver, dict) and (driver.get("host"), driver.get("pid"),
                                         driver.get("start")) != (me["host"], me["pid"], me["start"]):
            continue
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        if _retry_locked(lambda: (storage.set_trial_user_attr(trial_id, "failed_reason", reason),
                                  storage.set_trial_state_values(trial_id, TrialState.FAIL))[1]):
            failed.append(trial.number)
    return failed


def end_interrupted_session(storage: BaseStorage) -> None:
    """Release every database connection an interrupt may have left holding the write lock.

    A Ctrl-C that lands inside SQLAlchemy's commit, close or pool check-in can leave a
    connection in a write transaction: either still in this thread's session, or back in the
    engine's pool without the rollback its check-in normally does (seen a few times in a few
    hundred Optuna writes interrupted at random moments). On SQLite either one holds the write
    lock, so the FAIL writes that follow would wait out the 30 s busy timeout again and again.
    Removing the session rolls the first back; disposing the engine closes the pooled
    connections, and closing rolls the second back. The next write opens a new connection, so
    this costs nothing when nothing was left open.
    """
    backend = getattr(storage, "_backend", storage)
    scoped = getattr(backend, "scoped_session", None)
    if scoped is not None:
        try:
            scoped.remove()
        except Exception as exc:  # a broken connection: the FAIL writes open a new one
            log.debug("closing the interrupted database session: %s", exc)
    engine = getattr(backend, "engine", None)
    if engine is not None:
        engine.dispose()


def _retry_locked(write: Callable[[], Any], tries: int = 8, first_wait_s: float = 0.1) -> Any:
    """``write()``, again after a short wait while SQLite says the database is locked: on Ctrl-C
    the trial workers are still committing their last reports when the driver fails its trials."""
    for attempt in range(tries):
        try:
            return write()
        except optuna.exceptions.StorageInternalError:
            if attempt == tries - 1:
                raise
            time.sleep(first_wait_s * 2 ** attempt)
    return None


class Heartbeat:
    """A daemon thread that stamps ``heartbeat`` on the driver's live trials every ``interval_s``."""

    def __init__(self, storage: BaseStorage, live_ids: Callable[[], list[int]],
                 interval_s: float = 60.0):
        self._storage, self._live_ids, self._interval = storage, live_ids, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="optuna-heartbeat", daemon=True)

    def __enter__(self) -> "Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            for trial_id in self._live_ids():
                try:
                    self._storage.set_trial_user_attr(trial_id, "heartbeat", time.time())
                except Exception as exc:  # finished meanwhile, or a transient DB error
                    log.debug("heartbeat for trial id %s skipped: %s", trial_id, exc)
