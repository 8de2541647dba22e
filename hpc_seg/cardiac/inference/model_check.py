"""What a cardiac ``model.pt`` must carry for prediction on new scans, checked before any work.

Training writes the weights plus ``classes``, ``image_size``, ``normalisation``, ``encoder`` and
the full training ``config``. Prediction refuses a file that lacks any of them: guessing an input
size or an intensity scaling would give masks that look plausible and are silently wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpc_seg.cardiac.resize import NORMALISATION
from hpc_seg.cardiac.train.model_file import CLASSES
from hpc_seg.errors import InputError
from hpc_seg.runtime.checkpoint import load_weights

#: keys ``predict`` needs besides the weights (``model``)
REQUIRED_KEYS = ("model", "classes", "image_size", "normalisation", "encoder", "config")


@dataclass(frozen=True)
class ModelInfo:
    """The prediction-relevant facts of a model file (no weights)."""

    path: Path
    classes: tuple[str, ...]
    image_size: int
    normalisation: dict[str, Any]
    encoder: str
    config: dict[str, Any]


def read_model_info(path: str | Path) -> ModelInfo:
    """Load and check ``path`` (``weights_only=True``); InputError naming the file and the gap."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: model file not found")
    state = load_weights(path)      # an unreadable or refused file: one InputError line
    if not isinstance(state, dict):
        raise InputError(f"{path}: not an hpc-seg model file (holds a {type(state).__name__}, "
                         "expected a dict with weights and metadata)")
    missing = [k for k in REQUIRED_KEYS if k not in state]
    if missing:
        raise InputError(f"{path}: model file lacks {', '.join(missing)}; prediction needs "
                         f"{', '.join(REQUIRED_KEYS)} (re-train with this hpc-seg version)")
    norm = dict(state["normalisation"])
    if norm != NORMALISATION:
        raise InputError(f"{path}: normalisation {norm} is not the one this version applies "
                         f"({NORMALISATION})")
    classes = tuple(str(c) for c in state["classes"])
    if classes[:3] != CLASSES:
        raise InputError(f"{path}: classes {list(classes)} lack background/lv/myocardium; "
                         "not a cardiac short-axis model")
    return ModelInfo(path=path, classes=classes, image_size=int(state["image_size"]),
                     normalisation=norm, encoder=str(state["encoder"]), config=dict(state["config"]))
