"""The search space of the cardiac 2D U-Net search and the published 9-run grid.

A space is a plain TOML-friendly dict, one key per :class:`~hpc_seg.cardiac.train.config.TrainConfig`
field that the search varies:

- a list is a categorical choice: ``encoder = ["resnet34", "resnet50", "vgg16_bn"]``;
- a table is a range: ``lr = {low = 1e-5, high = 1e-3, log = true}`` (float), or
  ``batch_size = {low = 8, high = 32, step = 8}`` (int, because both ends are integers).

:mod:`hpc_seg.hpo.space` turns it into Optuna distributions; ``[search] default_space`` and
``[search] grid`` name the two objects below, so the search code itself knows no study.
"""

from __future__ import annotations

from typing import Any

# The published best model (r34 / p05 / s256 / ce / normal) and its batch size and learning rate.
BASELINE: dict[str, Any] = {"encoder": "resnet34", "confidence_set": "p05", "image_size": 256,
                            "loss": "ce", "augment": "normal", "lr": 1e-4, "batch_size": 32}

# Published grid: the baseline plus one change per run. resnet50/vgg16 used batch 8 (GPU memory).
PUBLISHED_GRID: list[tuple[str, dict[str, Any]]] = [
    ("r34_p05_s256_ce_normal", {}),
    ("r50", {"encoder": "resnet50", "batch_size": 8}),
    ("vgg16", {"encoder": "vgg16_bn", "batch_size": 8}),
    ("focal", {"loss": "focal"}),
    ("softdice", {"loss": "softdice"}),
    ("p10", {"confidence_set": "p10"}),
    ("p15", {"confidence_set": "p15"}),
    ("s128", {"image_size": 128}),
    ("extreme", {"augment": "extreme"}),
]

# Default space: every value of the published grid, plus a continuous learning rate range.
DEFAULT_SPACE: dict[str, Any] = {
    "encoder": ["resnet34", "resnet50", "vgg16_bn"],
    "loss": ["ce", "focal", "softdice"],
    "image_size": [128, 256],
    "augment": ["normal", "extreme"],
    "confidence_set": ["p05", "p10", "p15"],
    "lr": {"low": 1e-5, "high": 1e-3, "log": True},
    "batch_size": [8, 16, 32],
}

def published_grid() -> list[tuple[str, dict[str, Any]]]:
    """The 9 published configurations as ``(name, full params)``, baseline first."""
    return [(name, {**BASELINE, **change}) for name, change in PUBLISHED_GRID]
