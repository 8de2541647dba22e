"""HAD-Net stage APIs: pretrain, distill, predict, evaluate (what commands and pipelines call).

Training stages run the per-rank functions of :mod:`hpc_seg.hadnet.train.run` either in this
process (``launch=None`` or ``executor = "local"`` with one task), as local gloo processes
(``executor = "local"``, ``tasks_per_node > 1``), or as one submitit job of
``nodes x tasks_per_node`` DDP ranks on SLURM (``executor = "slurm"``). A SLURM job that is
pre-empted or hits its time limit is resubmitted by submitit and resumes from its last
checkpoint, because the per-rank function always resumes from ``out_dir/checkpoints``.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

from hpc_seg.hadnet.evaluate import evaluate as _evaluate
from hpc_seg.config import config_hash, to_dict
from hpc_seg.hadnet.dispatch import run_ranks
from hpc_seg.hadnet.predict import predict as _predict
from hpc_seg.hadnet.train.config import HadnetTrainConfig
from hpc_seg.hadnet.train.run import PreDirSource, run_distill, run_pretrain

log = logging.getLogger(__name__)

__all__ = ["pretrain", "distill", "predict", "evaluate", "HadnetTrainConfig"]


def pretrain(cfg: HadnetTrainConfig, pre_dir: str | Path, out_dir: str | Path, role: str,
             launch: Any | None = None) -> Path:
    """Pre-train the teacher or the student on ``pre_dir``; returns the best model (best.pt)."""
    args = (cfg, PreDirSource(Path(pre_dir)), Path(out_dir), role)
    chash = config_hash({"stage": "pretrain", "role": role, "config": to_dict(cfg)})
    return Path(run_ranks(run_pretrain, args, launch, Path(out_dir), name=f"hadnet-{role}",
                          config_hash=chash))


def distill(cfg: HadnetTrainConfig, pre_dir: str | Path, teacher: str | Path,
            student: str | Path, out_dir: str | Path, variant: str = "had",
            launch: Any | None = None) -> Path:
    """Distil ``teacher`` into ``student`` (HAD-Net, or AD-Net with ``variant="ad"``).

    The run's lineage (``summary.json``, and the launcher's record on SLURM) carries the SHA-256
    of the teacher and student model files.
    """
    cfg = dataclasses.replace(cfg, variant=variant)  # so that run.json names the variant it ran
    args = (cfg, PreDirSource(Path(pre_dir)), Path(teacher), Path(student), Path(out_dir), variant)
    inputs = _lineage_inputs(teacher, student)
    # The inputs' hashes are part of the config hash recorded in the launcher's lineage table.
    chash = config_hash({"stage": "distill", "variant": variant, "config": to_dict(cfg), **inputs})
    return Path(run_ranks(run_distill, args, launch, Path(out_dir), name=f"hadnet-{variant}",
                          config_hash=chash, lineage=inputs))


def predict(model: str | Path, src_or_pre: str | Path, out_dir: str | Path, *,
            split: str | None = "test", device: str = "auto", uncertainty: str | None = None,
            seed: int = 0) -> Path:
    """Label maps (0/1/2/4, original grid, FLAIR affine, 0 outside the brain) for every case,
    plus per-region uncertainty maps with ``uncertainty`` (entropy, mcdropout[:N]); returns
    ``out_dir``."""
    return _predict(model, src_or_pre, out_dir, split=split, device=device,
                    uncertainty=uncertainty, seed=seed)


def evaluate(models: dict[str, str | Path], pre_dir: str | Path, out_dir: str | Path, *,
             split: str = "test", device: str = "auto", uncertainty: str | None = None,
             seed: int = 0) -> Path:
    """Dice, HD95, sensitivity, specificity (and QU with ``uncertainty``) per case, region and
    model, with tables and figures; returns ``dice_summary.csv``."""
    return _evaluate(models, pre_dir, out_dir, split=split, device=device,
                     uncertainty=uncertainty, seed=seed)


def _lineage_inputs(teacher: str | Path, student: str | Path) -> dict[str, Any]:
    from hpc_seg.hadnet.models.io import file_sha256

    return {"teacher": str(teacher), "teacher_sha256": file_sha256(teacher),
            "student": str(student), "student_sha256": file_sha256(student)}

