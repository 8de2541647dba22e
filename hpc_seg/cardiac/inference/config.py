"""Options of a prediction run (``hpc-seg predict`` flags)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hpc_seg.cardiac.decode_budget import DEFAULT_MAX_DECODED_MB
from hpc_seg.errors import ConfigError


@dataclass(kw_only=True)
class PredictConfig:
    """Options of ``hpc-seg predict``."""

    batch_size: int = 64
    """images per forward pass"""
    device: str = "auto"
    """auto, cpu, cuda or cuda:N"""
    dicom_seg: bool = True
    """also write DICOM Segmentation objects"""
    executor: Literal["local", "slurm"] = "local"
    """local: this process; slurm: one submitit array task per stack"""
    workers: int | None = None
    """ingest processes for DICOM input (default: the process's CPU allocation)"""
    max_decoded_mb: float | None = DEFAULT_MAX_DECODED_MB
    """largest decoded image of one DICOM file ingest accepts (MB; the ingest's per-file budget)"""

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ConfigError(f"batch_size: must be >= 1, but got {self.batch_size}")
        if self.executor not in ("local", "slurm"):
            raise ConfigError(f"executor: must be local or slurm, but got {self.executor!r}")


