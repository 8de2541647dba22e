"""A 4-trial search over the real 2D U-Net trainer (tiny resnet18 U-Net, 64 px, 2 epochs).

The slices dataset comes from the training stage's own builders (tests/cardiac/cohort.py phantoms ->
build_labels -> build_slices). Trials run one at a time with a fixed seed, ranked by val_loss:
trial 0 (lr 3e-3) learns, trial 1 (lr 1e-7) stays at its initial loss, so ASHA stops trial 1 at
the first rung and trial 0 completes.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import optuna
import pytest
import torch
from optuna.trial import TrialState

from hpc_seg.config import from_dict
from hpc_seg.cardiac.labels.build import build_labels
from hpc_seg.cardiac.slices.build import build_slices
from hpc_seg.hpo.search_config import SearchConfig
from hpc_seg.hpo.tuner import run_search
from hpc_seg.cardiac.train.model_file import load_model
from tests.hpo.conftest import REPO
from tests.cardiac.cohort import write_volumes

pytestmark = pytest.mark.ray


def test_four_trial_search_over_the_real_trainer(ray_session, tmp_path):
    volumes, truth = write_volumes(tmp_path, n_patients=5)
    build_labels(volumes, tmp_path / "labels", truth)
    build_slices(volumes, tmp_path / "labels", tmp_path / "slices_64", 64)
    cfg = from_dict(SearchConfig, {
        "num_samples": 4, "max_concurrent": 1, "metric": "val_loss", "study_name": "unet",
        "train": {"encoder": "resnet18", "decoder_channels": [16, 16, 8, 8, 8], "batch_size": 8,
                  "epochs_frozen": 1, "epochs_unfrozen": 1, "confidence_set": "all",
                  "shuffle_buffer": 32, "max_train_images": 32, "max_val_images": 24,
                  "augment": "none"},
        "space": {"encoder": ["resnet18"], "loss": ["ce"], "image_size": [64], "augment": ["none"],
                  "confidence_set": ["all"], "batch_size": [8],
                  "lr": {"low": 1e-3, "high": 1e-2, "log": True}},
        "points_to_evaluate": [{"lr": 3e-3}, {"lr": 1e-7}],
        "asha": {"grace_period": 1, "reduction_factor": 2},
        "data": {"slices_dir": str(tmp_path / "slices_{image_size}")}, "dashboard": False,
    }, "test")
    result = run_search(cfg, tmp_path / "search")
    study = optuna.load_study(study_name="unet", storage=result.storage)
    assert study.direction == optuna.study.StudyDirection.MINIMIZE
    trials = study.trials
    assert len(trials) == 4 and all(t.state in (TrialState.COMPLETE, TrialState.PRUNED)
                                    for t in trials)
    assert trials[0].state == TrialState.COMPLETE
    assert trials[1].state == TrialState.PRUNED and trials[1].params["lr"] == 1e-7
    assert trials[1].user_attrs["stopped_at_iteration"] == 1
    for t in trials:
        epochs = sorted(t.intermediate_values)
        assert epochs == ([1, 2] if t.state == TrialState.COMPLETE else [1])
        history = Path(t.user_attrs["out_dir"]) / "history.csv"
        assert history.is_file()
        ckpt = Path(t.user_attrs["checkpoint"])
        assert ckpt.is_file() and ckpt.parent.parent == Path(t.user_attrs["out_dir"])
        assert Path(t.user_attrs["tune_trial_dir"]).name.endswith(t.user_attrs["tune_trial_id"])
        if t.state == TrialState.COMPLETE:
            model, model_cfg = load_model(t.user_attrs["model_path"])
            assert model_cfg.lr == t.params["lr"] and model_cfg.device == "cpu"
            assert isinstance(model, torch.nn.Module)
    assert result.best_model and result.best_model.is_file()
    assert result.best_value == min(t.value for t in trials if t.state == TrialState.COMPLETE)
    rows = json.loads(subprocess.run(
        [str(REPO / ".venv" / "bin" / "optuna"), "trials", "--study-name", "unet",
         "--storage", result.storage, "-f", "json"],
        capture_output=True, text=True, timeout=120, check=True).stdout)
    assert [r["state"] for r in rows] == [t.state.name for t in trials]
