"""Before distilling: does the teacher segment the region the student is to learn from it?

A teacher that never predicts ET scores Dice 1 on every case without ET, so only the cases whose
truth has the region can tell; with nothing to distil, HAD-Net's comparison says nothing.
Used by the ``hadnet_check_teacher`` stage and ``hpc-seg hadnet check-teacher``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpc_seg.errors import ConfigError, InputError


@dataclass(kw_only=True)
class TeacherCheckConfig:
    """The ``[hadnet_check_teacher]`` table."""

    split: str = "val"
    """split whose cases the teacher is scored on"""
    region: str = "ET"
    """tumour region checked (ET, TC or WT)"""
    min_et_dice: float = 0.1
    """stop when the teacher's mean Dice over the split's cases with the region is below this
    (0 = report only)"""

    def __post_init__(self) -> None:
        if self.region not in ("ET", "TC", "WT"):
            raise ConfigError(f"hadnet_check_teacher: region must be ET, TC or WT, "
                              f"but got {self.region!r}")
        if not 0.0 <= self.min_et_dice <= 1.0:
            raise ConfigError(f"hadnet_check_teacher: min_et_dice must be in [0, 1], "
                              f"but got {self.min_et_dice}")


def check_teacher(teacher: str | Path, pre_dir: str | Path, out: str | Path,
                  cfg: TeacherCheckConfig, *, device: str = "auto") -> dict[str, Any]:
    """Score ``teacher`` on ``cfg.split``; write ``OUT/teacher_check.json``; raise
    :class:`InputError` (one line) when its Dice is below ``cfg.min_et_dice``."""
    from hpc_seg.hadnet.evaluate import region_check
    from hpc_seg.storage.shards import atomic_write_bytes

    out = Path(out)
    res = region_check(teacher, pre_dir, out, split=cfg.split, region=cfg.region, device=device)
    atomic_write_bytes(json.dumps(res, indent=1).encode(), out / "teacher_check.json")
    line = (f"teacher {teacher}: {cfg.region} Dice {res['mean_dice']:.3f} on the "
            f"{res['n_with_region']} {cfg.split} case(s) with {cfg.region} "
            f"(of {res['n_cases']})")
    if not res["n_with_region"] or not res["mean_dice"] >= cfg.min_et_dice:
        raise InputError(f"{line}, below min_et_dice {cfg.min_et_dice}: it has no "
                         f"{cfg.region} to distil; train it longer (or lower min_et_dice)")
    return {"et_dice": round(res["mean_dice"], 4), "n_cases": res["n_with_region"],
            "check": str(out / "teacher_check.json"), "line": line}
