"""A tiny synthetic cine cohort and an untrained model file for the prediction tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hpc_seg.cardiac.synth.cohort import generate_cine_cohort
from hpc_seg.cardiac.synth.config import CineSynthConfig
from hpc_seg.cardiac.train.config import PRESETS, TrainConfig
from hpc_seg.cardiac.train.model_file import build_model, model_state


@pytest.fixture(scope="session")
def cohort(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("cohort")
    cfg = CineSynthConfig(no_random_quirks=True, guarantee_quirks=False, max_matrix=64,
                          n_frames=6, slices=(6, 7))
    generate_cine_cohort(src, 2, 5, config=cfg)
    return src


@pytest.fixture(scope="session")
def model(tmp_path_factory) -> Path:
    """An untrained debug U-Net: its masks are arbitrary but deterministic, which is all these
    geometry and bookkeeping checks need (training would add a minute and prove nothing here).
    Its head is scaled up and unbiased so that the masks hold all three classes (~85/11/4 %) and
    vary from frame to frame; a fresh head labels every pixel background, which would make the
    volume comparisons trivially equal."""
    path = tmp_path_factory.mktemp("model") / "model.pt"
    cfg = TrainConfig(**PRESETS["debug"], device="cpu")
    torch.manual_seed(0)
    model = build_model(cfg)
    with torch.no_grad():
        model.head.weight.mul_(100.0)
        model.head.bias.zero_()
    torch.save(model_state(model, cfg), path)
    return path


