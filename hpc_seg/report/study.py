"""The Optuna part of the report: best trial, trial table, and Optuna's own matplotlib plots
(optimisation history, parameter importances). Matplotlib gives PNGs, so the page needs no
JavaScript and no network, unlike the plotly figures."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

log = logging.getLogger(__name__)


@dataclass
class StudySection:
    """What the page shows for one study."""

    storage: Path
    name: str
    best: dict | None
    trials: pd.DataFrame
    not_complete: pd.DataFrame
    images: list[tuple[str, Path]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _save(ax, path: Path) -> Path:
    from hpc_seg.storage.shards import atomic_write

    fig = ax.figure if hasattr(ax, "figure") else ax.flat[0].figure
    fig.set_size_inches(6.5, 3.8)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=80))
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def study_sections(db: Path, images_dir: Path, prefix: str) -> list[StudySection]:
    """One section per study in the SQLite storage ``db``; plots go to ``images_dir``."""
    import matplotlib

    matplotlib.use("Agg")
    import optuna
    from optuna.trial import TrialState

    from hpc_seg.hpo.study_info import list_studies, load, plot_learning_curves, trials_table

    storage = f"sqlite:///{Path(db).resolve()}"
    sections = []
    for info in list_studies(storage):
        study = load(storage, info["study"])
        trials = trials_table(study)
        complete = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
        best = None
        if complete:
            b = study.best_trial
            best = {"number": b.number, "value": b.value, **b.params}
        bad = trials[trials["state"].isin(["PRUNED", "FAIL"])] if len(trials) else trials
        sec = StudySection(Path(db), study.study_name, best, trials, bad)
        slug = f"{prefix}-{study.study_name}".replace("/", "_").replace(" ", "_")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # optuna.visualization.matplotlib is "experimental"
            plots = (("optimisation history", "history",
                      optuna.visualization.matplotlib.plot_optimization_history),
                     ("parameter importances", "importances",
                      optuna.visualization.matplotlib.plot_param_importances))
            for title, tag, fn in plots:
                try:
                    ax = fn(study)
                    sec.images.append((title, _save(ax, images_dir / f"{slug}-{tag}.png")))
                except (ValueError, RuntimeError, ZeroDivisionError) as exc:
                    # e.g. importances need two finished trials with differing parameters
                    sec.notes.append(f"{title}: not available ({exc})")
        if any(t.intermediate_values for t in study.get_trials(deepcopy=False)):
            sec.images.append(("every trial's value per epoch (pruned dashed)",
                               plot_learning_curves(study, images_dir / f"{slug}-curves.png")))
        sections.append(sec)
    return sections
