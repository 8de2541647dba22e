"""Entry functions of HAD-Net training, run once per rank (plain process, torchrun or submitit).

:func:`run_pretrain` and :func:`run_distill` join the job's process group through
:func:`hpc_seg.launch.ddp.init_distributed`, load this rank's share of the cases, train with
:mod:`hpc_seg.hadnet.train.loop` and return the best model's path. They are top-level and take
only picklable arguments, so submitit can ship them to every task of a ``nodes x tasks`` job.
Re-running a finished run returns at once; an interrupted one resumes from its last checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch

from hpc_seg.config import to_dict
from hpc_seg.storage.shards import atomic_write_bytes
from hpc_seg.errors import ConfigError, InputError, SettingsChangedError
from hpc_seg.launch.ddp import DistEnv, cleanup_distributed, init_distributed
from hpc_seg.hadnet.train.config import HadnetTrainConfig
from hpc_seg.hadnet.brats.shards import case_index
from hpc_seg.hadnet.train.data import Case, load_cases, role_channels
from hpc_seg.hadnet.train.loop import LoopSetup, run_loop
from hpc_seg.hadnet.models.io import file_sha256, load_model_file
from hpc_seg.runtime.threads import configure_torch_threads

log = logging.getLogger(__name__)


class CaseSource(Protocol):
    """Where a run gets its cases: a preprocessed directory, or memory (tests, benchmarks)."""

    def load(self, split: str, rank: int, world_size: int) -> list[Case]: ...
    def count(self, split: str) -> int: ...
    def preprocess(self) -> dict[str, Any]: ...


@dataclass
class PreDirSource:
    """The data engineer's preprocessed cohort ``PRE/`` (cases table + preprocess.json)."""

    pre_dir: Path

    def load(self, split: str, rank: int, world_size: int) -> list[Case]:
        return load_cases(self.pre_dir, split, rank, world_size)

    def count(self, split: str) -> int:
        return len(case_index(Path(self.pre_dir), split))

    def preprocess(self) -> dict[str, Any]:
        path = Path(self.pre_dir) / "preprocess.json"
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            raise InputError(f"{path}: not found; {self.pre_dir} is not a preprocessed cohort "
                             "(run 'hpc-seg hadnet preprocess SRC PRE' first)") from None


@dataclass
class MemorySource:
    """Cases already in memory (``index`` = position in the split)."""

    train: list[Case]
    val: list[Case]
    pad_size: list[int]

    def load(self, split: str, rank: int, world_size: int) -> list[Case]:
        cases = self.train if split == "train" else self.val
        return [c for c in cases if c.index % world_size == rank]

    def count(self, split: str) -> int:
        return len(self.train if split == "train" else self.val)

    def preprocess(self) -> dict[str, Any]:
        return {"pad_size": list(self.pad_size)}


def _join(cfg: HadnetTrainConfig) -> DistEnv:
    configure_torch_threads(cfg.threads, local_ranks=int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("[hadnet] device = 'cuda', but this machine has no usable GPU "
                          f"(torch {torch.__version__}, cuda available: False)")
    env = init_distributed(cfg.seed, backend="gloo" if cfg.device == "cpu" else None)
    if cfg.device == "cpu" and env.device.type != "cpu":
        env = dataclasses.replace(env, device=torch.device("cpu"))
    return env


# Fields that may change between a run and its resumption without changing what it computes
# (extending the number of epochs continues the same run).
_RESUMABLE_FIELDS = {"threads", "device", "epochs", "distill_epochs", "keep_checkpoints",
                     "validate_every", "pre_dir", "teacher", "student"}


def _check_same_run(out_dir: Path, cfg: HadnetTrainConfig, meta: dict[str, Any]) -> None:
    """Refuse to resume (or skip) a run folder that was started with different settings."""
    ident = {k: v for k, v in to_dict(cfg).items() if k not in _RESUMABLE_FIELDS}
    ident.update({k: v for k, v in meta.items() if k in ("role", "teacher_sha256", "student_sha256")})
    path = out_dir / "run.json"
    if path.is_file():
        old = json.loads(path.read_text())
        diff = sorted(k for k in set(old) | set(ident) if old.get(k) != ident.get(k))
        if diff:
            changed = ", ".join(f"{k} {old.get(k)} -> {ident.get(k)}" for k in diff)
            raise SettingsChangedError(f"{out_dir}: holds a run started with different settings "
                                       f"({changed}); use another output folder")
    else:
        atomic_write_bytes(json.dumps(ident, indent=2, default=str).encode(), path)


def _finished(out_dir: Path, epochs: int) -> Path | None:
    summary = out_dir / "summary.json"
    if summary.is_file():
        data = json.loads(summary.read_text())
        if data.get("epochs") == epochs and (out_dir / "best.pt").is_file():
            log.info("%s: already trained for %d epochs; skipping", out_dir, epochs)
            return out_dir / "best.pt"
    return None


def _train(cfg: HadnetTrainConfig, source: CaseSource, out_dir: Path, epochs: int,
           make_trainer: Callable[[DistEnv], Any], meta: dict[str, Any],
           on_epoch_end: Callable[[int], None] | None) -> Path:
    out_dir = Path(out_dir)
    preprocess = source.preprocess()  # fails early, naming the folder, if the cohort is missing
    out_dir.mkdir(parents=True, exist_ok=True)
    _check_same_run(out_dir, cfg, meta)  # every rank checks the same file, so all agree
    done = _finished(out_dir, epochs)
    if done is not None:
        return done
    env = _join(cfg)
    try:
        t0 = time.perf_counter()
        trainer = make_trainer(env)
        train = source.load("train", env.rank, env.world_size)
        val = source.load("val", env.rank, env.world_size)
        n_train, n_val = source.count("train"), source.count("val")
        if n_train < env.world_size * cfg.grad_accum:
            raise InputError(f"{out_dir}: {n_train} training case(s) is fewer than one global "
                             f"batch ({env.world_size} ranks x grad_accum {cfg.grad_accum})")
        setup = LoopSetup(cfg=cfg, env=env, train=train, n_train=n_train, val=val, n_val=n_val,
                          epochs=epochs, out_dir=out_dir, on_epoch_end=on_epoch_end,
                          model_meta={**meta, "dropout": cfg.dropout, "config": to_dict(cfg),
                                      "pad_size": list(preprocess["pad_size"]),
                                      "preprocess": preprocess})
        best = run_loop(trainer, setup)
        if env.is_main:
            last = setup.history[-1] if setup.history else {}
            best_rec = max((h for h in setup.history if "val_VM" in h), key=lambda h: h["val_VM"],
                           default={})
            summary = {**{k: v for k, v in meta.items() if k != "preprocess"}, "epochs": epochs,
                       "world_size": env.world_size, "device": str(env.device),
                       "best_path": str(best), "best_epoch": best_rec.get("epoch"),
                       "best_vm": best_rec.get("val_VM"), "last": last,
                       "seconds_this_session": time.perf_counter() - t0, "config": to_dict(cfg)}
            atomic_write_bytes(json.dumps(summary, indent=2, default=str).encode(),
                               out_dir / "summary.json")
        return best
    finally:
        cleanup_distributed()


def run_pretrain(cfg: HadnetTrainConfig, source: CaseSource, out_dir: str | Path, role: str,
                 on_epoch_end: Callable[[int], None] | None = None) -> Path:
    """Pre-train the ``teacher`` or ``student`` for ``cfg.epochs``; returns ``out_dir/best.pt``."""
    from hpc_seg.hadnet.train.pretrain import PretrainTrainer

    if role not in ("teacher", "student"):
        raise ConfigError(f"role must be 'teacher' or 'student', but got {role!r}")
    meta = {"role": role, "channels": list(role_channels(role))}
    return _train(cfg, source, Path(out_dir), cfg.epochs,
                  lambda env: PretrainTrainer(cfg, env, role), meta, on_epoch_end)


def run_distill(cfg: HadnetTrainConfig, source: CaseSource, teacher: str | Path,
                student: str | Path, out_dir: str | Path, variant: str = "had",
                on_epoch_end: Callable[[int], None] | None = None) -> Path:
    """Distil ``teacher`` into (a copy of) ``student`` for ``cfg.distill_epochs``.

    The run's ``summary.json`` (and the lineage the launcher records) carries the SHA-256 of both
    input model files, so a distilled model can be traced to the exact pre-trained weights.
    """
    from hpc_seg.hadnet.train.distill import DistillTrainer

    if variant not in ("had", "ad"):
        raise ConfigError(f"variant must be 'had' or 'ad', but got {variant!r}")
    t_model, t_meta = load_model_file(teacher)
    s_model, s_meta = load_model_file(student)
    if t_model.in_channels != 4 or s_model.in_channels != 3:
        raise InputError(f"{teacher} / {student}: expected a 4-channel teacher and a 3-channel "
                         f"student, but got {t_model.in_channels} and {s_model.in_channels}")
    pad = list(source.preprocess()["pad_size"])
    for path, m in ((teacher, t_meta), (student, s_meta)):
        if list(m.get("pad_size", pad)) != pad:
            raise InputError(f"{path}: trained at pad size {m.get('pad_size')}, but the cohort "
                             f"is padded to {pad}")
    meta = {"role": variant, "channels": [0, 2, 3],
            "teacher": str(teacher), "teacher_sha256": file_sha256(teacher),
            "student": str(student), "student_sha256": file_sha256(student)}
    return _train(cfg, source, Path(out_dir), cfg.distill_epochs,
                  lambda env: DistillTrainer(cfg, env, t_model, s_model, variant), meta,
                  on_epoch_end)
