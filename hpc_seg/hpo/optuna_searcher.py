"""A Tune searcher that asks and tells an Optuna study directly, recording the right trial states.

Ray's stock ``OptunaSearch`` stores ASHA-stopped trials as COMPLETE, drops the last epoch's value and
keeps no link to the Tune trial (see the project's Ray/Optuna notes). This searcher uses only Tune's
public :class:`~ray.tune.search.Searcher` API and Optuna's ask/tell:

- ``suggest`` asks the study (define-and-run with fixed distributions, so enqueued grid points and
  ``points_to_evaluate`` come out first) and stamps the Tune trial id, the driver and the trial's
  output folder into the Optuna trial's user attrs;
- every epoch's metric is reported as an intermediate value at step ``epoch``, including the last
  one, which Tune passes only to ``on_trial_complete``;
- a trial that ran all its planned epochs is COMPLETE; one that :class:`RecordingASHA` stopped is
  PRUNED with ``stopped_at_iteration``; anything else (an error, no metric, ending early without
  a scheduler stop) is FAIL with ``failed_reason``.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.storages import BaseStorage
from optuna.trial import TrialState
from ray.tune.schedulers import ASHAScheduler, TrialScheduler
from ray.tune.search import Searcher

log = logging.getLogger(__name__)

RESULT_FILE = "trial_result.json"


class RecordingASHA(ASHAScheduler):
    """ASHA that remembers which trials it stopped early, and at which time.

    At ``max_t`` (the trials' last epoch) it always answers CONTINUE: stock ASHA would answer STOP
    there (or decide at a rung placed exactly at ``max_t``), and Tune then kills the trainable
    right after its last report, before the trainer writes its final model. The trial ends by
    itself instead, so every recorded stop is a real early stop.
    """

    def __init__(self, *, time_attr: str, max_t: int, **kwargs: Any):
        super().__init__(time_attr=time_attr, max_t=max_t, **kwargs)
        self.time_attr, self.max_t = time_attr, max_t
        self.stopped: dict[str, int] = {}

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        t = result.get(self.time_attr)
        if t is not None and t >= self.max_t:
            return TrialScheduler.CONTINUE
        decision = super().on_trial_result(tune_controller, trial, result)
        if decision == TrialScheduler.STOP and t is not None:
            self.stopped[trial.trial_id] = int(t)
        return decision


def trial_dirname(number: int, tune_trial_id: str) -> str:
    """The Tune trial folder name: Optuna number first, so both ids are in the path."""
    return f"trial-{number:04d}-{tune_trial_id}"


def _number(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


class StudySearcher(Searcher):
    """Tune searcher backed by an Optuna study (see the module docstring)."""

    def __init__(self, study: optuna.Study, storage: BaseStorage,
                 distributions: dict[str, BaseDistribution], *,
                 metric: str, mode: str, max_trials: int, trials_dir: Path, experiment_dir: Path,
                 driver: dict, stopped_by_scheduler: dict[str, int]):
        super().__init__(metric=metric, mode=mode)
        self._study, self._storage, self._dists = study, storage, distributions
        self._study_id = storage.get_study_id_from_name(study.study_name)
        self._max_trials, self._trials_dir, self._driver = max_trials, Path(trials_dir), driver
        self._experiment_dir = Path(experiment_dir)
        self._stopped = stopped_by_scheduler
        self._live: dict[str, optuna.Trial] = {}
        self._storage_ids: dict[str, int] = {}
        self._steps: dict[str, set[int]] = {}
        self._lock = threading.Lock()
        self.asked = 0

    # Tune pickles the searcher into its experiment state; the study lives in the storage anyway.
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        for key in ("_study", "_storage", "_lock", "_live", "_steps", "_storage_ids"):
            state.pop(key, None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._study, self._storage, self._lock = None, None, threading.Lock()
        self._live, self._steps, self._storage_ids = {}, {}, {}

    def save(self, checkpoint_path: str) -> None:
        # All state is in the Optuna storage; write a pointer so Tune's experiment state is complete.
        Path(checkpoint_path).write_text(json.dumps({"study": self._study.study_name}))

    def restore(self, checkpoint_path: str) -> None:
        """Nothing to restore: resuming continues the Optuna study (see hpc_seg.hpo.tuner)."""

    def live_trial_ids(self) -> list[int]:
        """Optuna storage ids of the trials this driver is running (for the heartbeat)."""
        with self._lock:
            return [self._storage_ids[k] for k in self._live]

    def suggest(self, trial_id: str) -> dict | None:
        if self.asked >= self._max_trials:
            return Searcher.FINISHED
        trial = self._study.ask(self._dists)
        self.asked += 1
        out_dir = self._trials_dir / f"trial-{trial.number:04d}"
        tune_dir = self._experiment_dir / trial_dirname(trial.number, trial_id)
        for key, value in {"tune_trial_id": trial_id, "tune_trial_dir": str(tune_dir),
                           "driver": self._driver, "heartbeat": time.time(),
                           "out_dir": str(out_dir)}.items():
            trial.set_user_attr(key, value)
        storage_id = self._storage.get_trial_id_from_study_id_trial_number(self._study_id,
                                                                           trial.number)
        with self._lock:
            self._live[trial_id] = trial
            self._storage_ids[trial_id] = storage_id
            self._steps[trial_id] = set()
        # the console's one line per trial is its end (COMPLETE / PRUNED / FAIL); starts with -v
        log.debug("trial %d (Tune %s): %s", trial.number, trial_id, trial.params)
        return {"params": dict(trial.params), "trial_number": trial.number, "out_dir": str(out_dir)}

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        trial = self._live.get(trial_id)
        if trial is not None:
            self._record(trial_id, trial, result)

    def _record(self, trial_id: str, trial: optuna.Trial, result: dict) -> int | None:
        """Store one epoch: its value at step ``epoch`` (once), checkpoint and Tune trial dir."""
        step = result.get("epoch", result.get("training_iteration"))
        value = _number(result.get(self.metric))
        if step is None or value is None:
            return None
        step = int(step)
        if step not in self._steps[trial_id]:
            trial.report(value, step)
            self._steps[trial_id].add(step)
        attrs = {"last_epoch": step, "heartbeat": time.time()}
        if result.get("checkpoint"):
            attrs["checkpoint"] = str(result["checkpoint"])
        for key, val in attrs.items():
            trial.set_user_attr(key, val)
        return step

    def on_trial_complete(self, trial_id: str, result: dict | None = None,
                          error: bool = False) -> None:
        with self._lock:
            trial = self._live.pop(trial_id, None)
            self._storage_ids.pop(trial_id, None)
        if trial is None:
            return
        step = self._record(trial_id, trial, result) if result and not error else None
        self._steps.pop(trial_id, None)
        planned = int((result or {}).get("planned_epochs", 0))
        if step is None:
            reason = "error in the trainable (see the Tune trial's error.txt)" if error \
                else f"no finite {self.metric!r} in the trial's last result"
            self._fail(trial, reason)
        elif trial_id in self._stopped:
            trial.set_user_attr("stopped_at_iteration", self._stopped[trial_id])
            trial.set_user_attr("stopped_at_epoch", step)
            self._study.tell(trial, state=TrialState.PRUNED)
            log.info("trial %d PRUNED by ASHA at epoch %d", trial.number, step)
        elif planned and step >= planned:
            model = _model_path(Path(trial.user_attrs["out_dir"]))
            if model:
                trial.set_user_attr("model_path", model)
            value = _number(result.get(self.metric))
            self._study.tell(trial, value)
            log.info("trial %d COMPLETE: %s = %.4f", trial.number, self.metric, value)
        else:
            self._fail(trial, f"ended after epoch {step} of {planned or '?'} without an ASHA stop")

    def _fail(self, trial: optuna.Trial, reason: str) -> None:
        trial.set_user_attr("failed_reason", reason)
        self._study.tell(trial, state=TrialState.FAIL)
        log.warning("trial %d FAIL: %s", trial.number, reason)

    def fail_live_trials(self, reason: str) -> list[int]:
        """Mark every trial still running in this driver FAIL (on Ctrl-C or a driver error)."""
        with self._lock:
            live, self._live, self._storage_ids = list(self._live.values()), {}, {}
        for trial in live:
            try:
                self._fail(trial, reason)
            except Exception as exc:  # already finished by Tune meanwhile
                log.debug("trial %d not failed: %s", trial.number, exc)
        return [t.number for t in live]


def _model_path(out_dir: Path) -> str | None:
    """The model file the trainable recorded in ``out_dir/trial_result.json``, if any."""
    try:
        return json.loads((out_dir / RESULT_FILE).read_text()).get("model_path")
    except (OSError, ValueError):
        return None
