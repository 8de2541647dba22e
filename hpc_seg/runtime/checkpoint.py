"""Atomic checkpoints with rotation, and safe loading.

A checkpoint is a dict of tensors and plain Python values (state dicts, epoch, best metric, RNG
states). It is written to a temporary name and renamed, so a pre-empted job can never resume from a
half-written file; the last ``keep`` files are kept. Loading always uses
``torch.load(weights_only=True)``: checkpoints are data, never code.

:func:`load_weights` is the one place in hpc-seg that calls ``torch.load``: every model,
checkpoint and weights file goes through it, so every such file is refused the same way, as
one line naming the file (tests/test_layout.py keeps it that way).
"""

from __future__ import annotations

import logging
import os
import pickle
import random
import re
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hpc_seg.errors import InputError

log = logging.getLogger(__name__)

_NAME = re.compile(r"^ckpt-(\d+)\.pt$")


def save_checkpoint(state: dict[str, Any], directory: str | Path, step: int, keep: int = 3) -> Path:
    """Write ``state`` as ``ckpt-<step>.pt`` atomically and delete all but the newest ``keep``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / f"ckpt-{step:06d}.pt"
    tmp = directory / f".tmp-{uuid.uuid4().hex[:8]}-{final.name}"
    try:
        torch.save(state, tmp)
        with open(tmp, "rb") as fh:  # make the bytes durable before the rename publishes them
            os.fsync(fh.fileno())
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    for old in list_checkpoints(directory)[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)
    return final


def list_checkpoints(directory: str | Path) -> list[Path]:
    """Complete checkpoints in ``directory``, oldest first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """A training checkpoint (a dict) through :func:`load_weights`."""
    state = load_weights(path, map_location)
    if not isinstance(state, dict):
        raise InputError(f"{path}: not a checkpoint (holds a {type(state).__name__}, not a dict)")
    return state


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def load_weights(path: str | Path, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load(weights_only=True)`` for any model, checkpoint or weights file, with a
    refusal as one :class:`InputError` line naming the file.

    A file that would need arbitrary code to unpickle is refused by torch with a multi-line
    message (with terminal colour codes) that suggests ``weights_only=False``: exactly what must
    not be done with a file of unknown origin. The user gets the file name and the reason
    instead; an empty, truncated, random or unreadable file is an :class:`InputError` too,
    whatever the unpickler or the zip reader raised for it.
    """
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        # torch says the same for a file holding Python objects and for plain garbage
        raise InputError(f"{path}: not a plain weights file (only tensors and plain values are "
                         "loaded); it will not be loaded") from None
    except FileNotFoundError:
        raise InputError(f"{path}: weights file not found") from None
    except Exception as exc:  # noqa: BLE001 - zip, pickle, unicode, EOF...: all "not loadable"
        text = _ANSI.sub("", str(exc)).strip()
        cause = (text.splitlines() or [""])[0][:200]
        cause = f"{type(exc).__name__}: {cause}" if cause else type(exc).__name__
        raise InputError(f"{path}: not a readable weights file ({cause})") from None


def load_latest(directory: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any] | None:
    """The newest loadable checkpoint, or ``None``. A corrupt newest file falls back to the previous."""
    for path in reversed(list_checkpoints(directory)):
        try:
            state = load_checkpoint(path, map_location)
            log.info("resuming from %s", path)
            return state
        except InputError as exc:  # a damaged file must not block resuming
            log.warning("%s; trying an older checkpoint", exc)
    return None


def rng_state() -> dict[str, Any]:
    """Capture Python, NumPy and torch RNG states as weights_only-loadable values."""
    np_state = np.random.get_state()
    state = {
        "python": _py_state_to_tensor(random.getstate()),
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached": float(np_state[4])},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured."""
    random.setstate(_py_state_from_tensor(state["python"]))
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _py_state_to_tensor(st: tuple) -> torch.Tensor:
    version, internal, gauss = st
    return torch.tensor([version, *internal, -1 if gauss is None else 1], dtype=torch.int64)


def _py_state_from_tensor(t: torch.Tensor) -> tuple:
    vals = t.tolist()
    return (vals[0], tuple(vals[1:-1]), None)
