"""Build and load 2D U-Nets, and predict: the ``slices`` dataset, or whole stacks of a volume.

``predict_slices`` writes the published predictions table (``file``, ``lv_pixels``, ``my_pixels``
for every image) plus identifiers and per-image metrics against the dataset's masks.
"""

from __future__ import annotations

import contextlib
import io
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from hpc_seg.config import from_dict
from hpc_seg.storage.shards import atomic_write_bytes, shard_files
from hpc_seg.cardiac.slices.stream import binary_column_to_array
from hpc_seg.cardiac.slices.build import fit_pad, read_meta, to_uint8, unfit_pad
from hpc_seg.errors import InputError
from hpc_seg.cardiac.models.unet2d import Unet2d
from hpc_seg.cardiac.train.config import TrainConfig
from hpc_seg.cardiac.train.metrics import image_metrics
from hpc_seg.progress import progress_bar

log = logging.getLogger(__name__)

CLASSES = ("background", "lv", "myocardium")
ID_COLUMNS = ["file", "stack_id", "subject_id", "patient_id", "split", "slice", "frame"]


def resolve_device(name: str) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"device {name!r} requested but CUDA is not available on this machine")
    return torch.device(name)


def autocast(device: torch.device, enabled: bool):
    """bf16 autocast on CUDA; a no-op on CPU (bf16 matmuls on CPU are slower than fp32 here)."""
    if device.type == "cuda" and enabled:
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def build_model(cfg: TrainConfig, init: bool = False) -> Unet2d:
    """The U-Net of ``cfg``; with ``init`` also load ImageNet encoder / init-checkpoint weights."""
    model = Unet2d(cfg.encoder, cfg.num_classes, cfg.decoder_channels,
                   encoder_weights=cfg.encoder_weights if init else None)
    if init and cfg.init_checkpoint is not None:
        path = Path(cfg.init_checkpoint)
        if not path.is_file():
            raise InputError(f"{path}: init_checkpoint not found")
        state = torch.load(path, map_location="cpu", weights_only=True)
        try:
            model.load_state_dict(state["model"] if "model" in state else state)
        except (RuntimeError, KeyError) as exc:
            raise InputError(f"{path}: does not fit a {cfg.encoder} U-Net with {cfg.num_classes} "
                             f"classes and decoder {cfg.decoder_channels} ({str(exc)[:200]})") from None
    return model


def load_model(path: Path, device: str = "cpu") -> tuple[Unet2d, TrainConfig]:
    """A trained model (eval mode) and its config from an hpc-seg ``model.pt``."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: model file not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        cfg = from_dict(TrainConfig, state["config"], str(path))
    except (KeyError, RuntimeError, OSError) as exc:
        raise InputError(f"{path}: not an hpc-seg model file ({exc})") from None
    model = build_model(cfg)
    model.load_state_dict(state["model"])
    return model.to(resolve_device(device)).eval(), cfg


@torch.no_grad()
def predict_images(model: Unet2d, images: torch.Tensor, device: torch.device,
                   amp: bool = True) -> torch.Tensor:
    """Label maps ``[N, H, W]`` (uint8) for uint8 images ``[N, 1, H, W]``."""
    x = images.to(device).float().div_(255.0)
    with autocast(device, amp):
        return model(x).argmax(1).to(torch.uint8).cpu()


def predict_slices(model_path: Path, slices_dir: Path, out: Path, splits: tuple[str, ...] = ("test",),
                   batch_size: int = 64, device: str = "auto") -> Path:
    """Predict every image of ``splits``; write ``out`` (Parquet) and return it."""
    slices_dir, out = Path(slices_dir), Path(out)
    meta = read_meta(slices_dir)
    dev = resolve_device(device)
    model, cfg = load_model(model_path, str(dev))
    if int(meta["image_size"]) != cfg.image_size:
        raise InputError(f"{model_path}: model expects {cfg.image_size} px images but {slices_dir} "
                         f"holds {meta['image_size']} px")
    size = cfg.image_size
    files = [f for f in shard_files(slices_dir) if any(f.name.startswith(f"part-{s}-") for s in splits)]
    frames = []
    with progress_bar(f"predict {Path(model_path).parent.name}", None, "images") as bar:
        for f in files:
            for batch in pq.ParquetFile(f).iter_batches(batch_size=batch_size,
                                                        columns=ID_COLUMNS + ["image", "mask"]):
                tbl = pa.Table.from_batches([batch])
                images = torch.from_numpy(binary_column_to_array(tbl.column("image"), (size, size)).copy())
                masks = torch.from_numpy(binary_column_to_array(tbl.column("mask"), (size, size)).copy())
                pred = predict_images(model, images[:, None], dev)
                df = tbl.select(ID_COLUMNS).to_pandas()
                df["lv_pixels"] = (pred == 1).sum((1, 2)).numpy()
                df["my_pixels"] = (pred == 2).sum((1, 2)).numpy()
                for k, v in image_metrics(pred.long(), masks.long(), cfg.num_classes).items():
                    df[k] = v.numpy()
                frames.append(df)
                bar.advance(len(df))
    if not frames:
        raise InputError(f"{slices_dir}: no images in split(s) {list(splits)}")
    table = pd.concat(frames, ignore_index=True)
    buf = io.BytesIO()
    table.to_parquet(buf, index=False)
    atomic_write_bytes(buf.getvalue(), out)
    return out


class StackPredictor:
    """Segment whole ``[frames, slices, rows, cols]`` stacks at their native matrix."""

    def __init__(self, model_path: Path, device: str = "auto", batch_size: int = 64):
        self.device = resolve_device(device)
        self.model, self.cfg = load_model(model_path, str(self.device))
        self.batch_size = batch_size

    def predict_stack(self, pixels: np.ndarray) -> np.ndarray:
        frames, slices, rows, cols = pixels.shape
        flat = torch.from_numpy(to_uint8(pixels).reshape(-1, rows, cols))
        out = []
        for i in range(0, flat.shape[0], self.batch_size):
            img = fit_pad(flat[i:i + self.batch_size], self.cfg.image_size, "bilinear")
            img = img.round().clamp(0, 255).to(torch.uint8)[:, None]
            out.append(unfit_pad(predict_images(self.model, img, self.device), rows, cols))
        return torch.cat(out).numpy().reshape(frames, slices, rows, cols).astype(np.uint8)
