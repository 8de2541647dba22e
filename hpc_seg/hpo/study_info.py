"""Read a search's Optuna storage: list studies, trial tables, the best trial, learning curves.

Everything here reads the same storage that ``optuna studies|trials|best-trial`` and
``optuna-dashboard`` read; nothing needs Ray.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import optuna
import pandas as pd

from hpc_seg.errors import InputError
from hpc_seg.hpo.storage import open_storage, redact

# User attrs shown as columns of the trial table (the rest stay in the storage).
TRIAL_ATTRS = ("tune_trial_id", "stopped_at_iteration", "fixed_point", "failed_reason",
               "checkpoint", "model_path")


def resolve_storage(spec: str | Path) -> str:
    """A storage URL from a URL, a ``study.db`` file or a search folder holding ``study.db``."""
    text = str(spec)
    if text.startswith("sqlite:///") and text != "sqlite:///:memory:":
        # Opening a missing SQLite file would create an empty database: a command that only
        # reads must say there is nothing there instead.
        if not Path(text[len("sqlite:///"):]).is_file():
            raise InputError(f"{spec}: no Optuna storage here (the SQLite file does not exist)")
        return text
    if "://" in text:
        return text
    path = Path(text)
    if path.is_dir():
        path = path / "study.db"
    if not path.is_file():
        raise InputError(f"{spec}: no Optuna storage here (expected a database URL, a study.db "
                         "file or a search folder containing study.db)")
    return f"sqlite:///{path.resolve()}"


def list_studies(storage: str) -> list[dict[str, Any]]:
    """One dict per study: name, direction, trial counts by state, best value, start time."""
    rows = []
    for s in optuna.get_all_study_summaries(open_storage(storage), include_best_trial=True):
        study = optuna.load_study(study_name=s.study_name, storage=open_storage(storage))
        states: dict[str, int] = {}
        for t in study.get_trials(deepcopy=False):
            states[t.state.name] = states.get(t.state.name, 0) + 1
        rows.append({"study": s.study_name, "direction": s.direction.name.lower(),
                     "trials": s.n_trials, **{k.lower(): v for k, v in sorted(states.items())},
                     "best_value": s.best_trial.value if s.best_trial else None,
                     "best_trial": s.best_trial.number if s.best_trial else None,
                     "target": study.user_attrs.get("target_trials"),
                     "started": s.datetime_start})
    return rows


def load(storage: str, study: str | None = None) -> optuna.Study:
    """Load ``study`` (or the only study in ``storage``); errors list the names there."""
    names = [s.study_name for s in optuna.get_all_study_summaries(open_storage(storage))]
    if study is None:
        if len(names) != 1:
            raise InputError(f"{redact(storage)}: holds {len(names)} studies {names}; pick one "
                             "with --study")
        study = names[0]
    if study not in names:
        raise InputError(f"{redact(storage)}: no study {study!r}; studies there: {names}")
    return optuna.load_study(study_name=study, storage=open_storage(storage))


def trials_table(study: optuna.Study) -> pd.DataFrame:
    """One row per trial: number, state, value, epochs reported, params, link attrs."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        rows.append({"number": t.number, "state": t.state.name, "value": t.value,
                     "epochs": len(t.intermediate_values), **t.params,
                     **{k: t.user_attrs.get(k) for k in TRIAL_ATTRS}})
    table = pd.DataFrame(rows)
    if "stopped_at_iteration" in table:
        table["stopped_at_iteration"] = table["stopped_at_iteration"].astype("Int64")
    return table


def best_trial(storage: str, study: str | None = None) -> dict[str, Any]:
    """The best COMPLETE trial: number, value, params and user attrs (checkpoint, model...)."""
    s = load(storage, study)
    if not any(t.state == optuna.trial.TrialState.COMPLETE for t in s.get_trials(deepcopy=False)):
        raise InputError(f"study {s.study_name!r} has no COMPLETE trial yet")
    b = s.best_trial
    return {"study": s.study_name, "number": b.number, "value": b.value, "params": dict(b.params),
            "user_attrs": dict(b.user_attrs),
            "intermediate_values": {int(k): v for k, v in sorted(b.intermediate_values.items())}}


def plot_learning_curves(study: optuna.Study, out: Path) -> Path:
    """PNG of every trial's per-epoch value; PRUNED dashed, FAIL dotted, the best one bold."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from hpc_seg.storage.shards import atomic_write_bytes

    best = None
    try:
        best = study.best_trial.number
    except ValueError:
        pass
    style = {"COMPLETE": "-", "PRUNED": "--", "FAIL": ":", "RUNNING": "-."}
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for t in study.get_trials(deepcopy=False):
        if not t.intermediate_values:
            continue
        steps = sorted(t.intermediate_values)
        ax.plot(steps, [t.intermediate_values[s] for s in steps], style.get(t.state.name, "-"),
                marker="o", lw=2.5 if t.number == best else 1, label=f"#{t.number} {t.state.name}")
    metric = study.user_attrs.get("metric", "value")
    ax.set(xlabel="epoch", ylabel=metric, title=f"{study.study_name}: {metric} per epoch")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(buf.getvalue(), Path(out))
    return Path(out)
