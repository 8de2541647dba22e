"""Trained HAD-Net model files: the generator's weights plus what inference needs.

A model file (``best.pt``) is a ``torch.save`` dict of plain values, loadable with
``weights_only=True``::

    format       "hpc-seg/hadnet-unet3d/1"
    role         "teacher" | "student" | "had" | "ad"   (who produced it)
    in_channels  4 (teacher) or 3 (student, HAD-Net, AD-Net)
    channels     indices into the stored [FLAIR, T1ce, T1, T2] image
    k, dropout   architecture
    pad_size     [D, H, W] the network was trained at (copy of preprocess.json's)
    preprocess   preprocess.json as a dict
    config       the HadnetTrainConfig as a dict
    epoch, vm    when it was selected and its validation metric (mean Dice WT/TC/ET)
    state_dict   the UNet3D weights

``preprocess.json`` is also copied next to the file, for people and tools that do not load torch.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import torch

from hpc_seg.storage.shards import atomic_write_bytes
from hpc_seg.errors import InputError
from hpc_seg.hadnet.models.unet3d import UNet3D
from hpc_seg.runtime.checkpoint import load_weights

FORMAT = "hpc-seg/hadnet-unet3d/1"


def save_model_file(path: str | Path, model: UNet3D, meta: dict[str, Any]) -> Path:
    """Write ``model`` and ``meta`` atomically to ``path`` (and preprocess.json beside it)."""
    path = Path(path)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    blob = {"format": FORMAT, "in_channels": model.in_channels, "k": model.k, **meta,
            "state_dict": state}
    buf = io.BytesIO()
    torch.save(blob, buf)
    atomic_write_bytes(buf.getvalue(), path)
    if meta.get("preprocess") is not None:
        atomic_write_bytes(json.dumps(meta["preprocess"], indent=2).encode(),
                           path.parent / "preprocess.json")
    return path


def load_model_file(path: str | Path, map_location: str | torch.device = "cpu"
                    ) -> tuple[UNet3D, dict[str, Any]]:
    """Rebuild the network from a model file; returns ``(model, meta)`` (model in eval mode)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: model file not found")
    blob = load_weights(path, map_location)     # unreadable or refused: one InputError line
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise InputError(f"{path}: not an hpc-seg HAD-Net model file (format "
                         f"{blob.get('format') if isinstance(blob, dict) else type(blob).__name__!r})")
    model = UNet3D(blob["in_channels"], k=blob["k"], dropout=blob.get("dropout", 0.2))
    model.load_state_dict(blob.pop("state_dict"))
    model.eval()
    return model, blob


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file (used in lineage records of distillation runs)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
