"""Fixtures shared by the 2D training tests: one tiny labelled cohort and its slices dataset."""

from __future__ import annotations

import pytest
import torch

from hpc_seg.data.labels import build_labels
from hpc_seg.data.slices import build_slices
from hpc_seg.train.config2d import TrainConfig
from tests.train.cohort import write_volumes

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def cohort(tmp_path_factory):
    """5 patients (3 train, 1 validate, 1 test); patient 2's truth is 8 % off, patient 3's 20 %."""
    root = tmp_path_factory.mktemp("cohort")
    volumes, truth = write_volumes(root, n_patients=5, truth_error={"2": 0.08, "3": 0.20})
    labels = root / "labels"
    build_labels(volumes, labels, truth)
    slices = build_slices(volumes, labels, root / "slices_64", 64)
    return {"root": root, "volumes": volumes, "truth": truth, "labels": labels, "slices": slices}


def tiny_config(**changes) -> TrainConfig:
    """A CPU-sized config: resnet18 with a narrow decoder, 64 px, 1 + 1 epochs."""
    base = dict(encoder="resnet18", decoder_channels=[32, 16, 16, 8, 8], image_size=64,
                batch_size=8, epochs_frozen=1, epochs_unfrozen=1, confidence_set="all", lr=1e-3,
                shuffle_buffer=32)
    base.update(changes)
    return TrainConfig(**base)
