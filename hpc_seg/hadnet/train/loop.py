"""The epoch loop shared by HAD-Net pre-training and distillation.

What it owns: the data order (``hadnet_data.epoch_steps``), per-sample seeding, gradient
averaging across ranks, validation with best-VM model selection, per-epoch atomic checkpoints and
resume. What a :class:`Trainer` (pre-training or distillation) supplies: ``micro_step`` (forward +
backward of one volume, gradients accumulated) and ``finish_step`` (average and apply them).

Why no ``DistributedDataParallel`` wrapper: distillation has two optimisers, passes the
generator's output through the discriminator for L_G, and skips discriminator updates on a gate.
DDP's reducer expects every forward of a wrapped module to be followed by a backward that reaches
all its parameters, which the gate breaks. Gradients are therefore averaged explicitly, once per
optimiser step, with one flattened ``all_reduce`` per model: the same arithmetic as DDP (mean over
ranks), without overlap of communication and backward. Parameters are broadcast from rank 0 at
the start, as DDP does.

Every sample's randomness (augmentation, dropout of student and teacher) is seeded from
(seed, epoch, case index), so a run gives the same result on any number of ranks and after a
resume; the RNG states are still saved in checkpoints for anything else that draws.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.distributed as dist
from torch import nn

from hpc_seg.storage.shards import atomic_write_bytes
from hpc_seg.launch.ddp import DistEnv
from hpc_seg.progress import progress_bar
from hpc_seg.runtime.checkpoint import load_latest, rng_state, save_checkpoint, set_rng_state
from hpc_seg.hadnet.train.config import HadnetTrainConfig
from hpc_seg.hadnet.train.data import Case, epoch_steps, rank_slots, sample_seed
from hpc_seg.runtime.device import autocast
from hpc_seg.hadnet.region_scores import region_dice, validation_metric
from hpc_seg.hadnet.models.io import save_model_file

log = logging.getLogger(__name__)


class Trainer(Protocol):
    """What the loop needs from pre-training or distillation."""

    generator: nn.Module            # the network that is validated and saved
    modules: dict[str, nn.Module]   # everything with trainable state (checkpointed)
    optimizers: dict[str, torch.optim.Optimizer]
    in_channels: tuple[int, ...]    # channels of the stored image the generator sees

    def begin_epoch(self, epoch: int) -> None: ...
    def micro_step(self, case: Case, epoch: int) -> None: ...
    def finish_step(self) -> dict[str, float]: ...


@dataclass
class LoopSetup:
    """Inputs of :func:`run_loop` besides the trainer."""

    cfg: HadnetTrainConfig
    env: DistEnv
    train: list[Case]               # this rank's training cases (index % world_size == rank)
    n_train: int                    # training cases over all ranks
    val: list[Case]                 # this rank's validation cases
    n_val: int                      # validation cases over all ranks (0: keep the last epoch)
    epochs: int
    out_dir: Path
    model_meta: dict[str, Any]      # saved with the best model (role, pad_size, preprocess...)
    on_epoch_end: Callable[[int], None] | None = None
    """tests use it to simulate pre-emption"""
    history: list[dict[str, Any]] = field(default_factory=list)


@contextlib.contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """Build graph through ``module`` without recording gradients for its parameters."""
    flags = [p.requires_grad for p in module.parameters()]
    for p in module.parameters():
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, f in zip(module.parameters(), flags):
            p.requires_grad_(f)


def average_gradients(module: nn.Module, env: DistEnv) -> None:
    """Mean of every parameter's gradient over ranks (one flattened all_reduce); no-op alone."""
    if not env.distributed:
        return
    params = [p for p in module.parameters() if p.requires_grad]
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= env.world_size
    offset = 0
    for p in params:
        n = p.numel()
        p.grad = flat[offset:offset + n].view_as(p).clone()
        offset += n


def broadcast_module(module: nn.Module, env: DistEnv) -> None:
    """Give every rank rank 0's parameters and buffers (as DDP does at construction)."""
    if not env.distributed:
        return
    for t in list(module.parameters()) + list(module.buffers()):
        dist.broadcast(t.data, src=0)


def seed_sample(seed: int, epoch: int, index: int) -> int:
    """Seed torch's global RNG (dropout) for one sample; returns the seed for other generators."""
    s = sample_seed(seed, epoch, index)
    torch.manual_seed(s)
    return s


def validate(generator: nn.Module, cases: list[Case], channels: tuple[int, ...],
             setup: LoopSetup) -> dict[str, float]:
    """Mean smoothed Dice (WT, TC, ET) and VM over the validation cases of all ranks."""
    env, cfg = setup.env, setup.cfg
    sums = torch.zeros(4, dtype=torch.float64)
    generator.eval()
    with torch.no_grad():
        for case in cases:
            x = case.image[list(channels)][None].to(env.device).float()
            with autocast(env.device, cfg.amp):
                logits, _ = generator(x)
            pred = logits.float().argmax(1)[0]
            d = region_dice(pred, case.label.to(env.device).long(), smooth=1.0)
            sums += torch.tensor([d["WT"], d["TC"], d["ET"], 1.0], dtype=torch.float64)
    generator.train()
    if env.distributed:
        sums = sums.to(env.device)
        dist.all_reduce(sums)
        sums = sums.cpu()
    n = max(float(sums[3]), 1.0)
    dice = {"WT": float(sums[0]) / n, "TC": float(sums[1]) / n, "ET": float(sums[2]) / n}
    return {**{f"val_{k}": v for k, v in dice.items()}, "val_VM": validation_metric(dice),
            "val_cases": int(sums[3])}


def _checkpoint_state(trainer: Trainer, epoch: int, best: dict[str, Any],
                      history: list[dict[str, Any]]) -> dict[str, Any]:
    return {"epoch": epoch, "best_vm": best["vm"], "best_epoch": best["epoch"],
            "modules": {k: m.state_dict() for k, m in trainer.modules.items()},
            "optimizers": {k: o.state_dict() for k, o in trainer.optimizers.items()},
            "rng": rng_state(), "history_json": json.dumps(history)}


def _restore(trainer: Trainer, state: dict[str, Any]) -> tuple[int, dict[str, Any], list]:
    for k, m in trainer.modules.items():
        m.load_state_dict(state["modules"][k])
    for k, o in trainer.optimizers.items():
        o.load_state_dict(state["optimizers"][k])
    set_rng_state(state["rng"])
    best = {"vm": state["best_vm"], "epoch": state["best_epoch"]}
    return int(state["epoch"]) + 1, best, json.loads(state["history_json"])


def run_loop(trainer: Trainer, setup: LoopSetup) -> Path:
    """Train for ``setup.epochs`` epochs (resuming from the newest checkpoint); return best.pt."""
    cfg, env, out = setup.cfg, setup.env, setup.out_dir
    ckpt_dir, best_path = out / "checkpoints", out / "best.pt"
    for m in trainer.modules.values():
        broadcast_module(m, env)
    start, best, history = 0, {"vm": -1.0, "epoch": -1}, []
    state = load_latest(ckpt_dir, map_location="cpu")  # RNG states must stay on CPU
    if state is not None:
        start, best, history = _restore(trainer, state)
        log.info("resumed at epoch %d (best VM %.4f at epoch %d)", start, best["vm"], best["epoch"])
    global_batch = env.world_size * cfg.grad_accum
    slots = rank_slots(env.rank, env.world_size, cfg.grad_accum)
    by_index = {c.index: c for c in setup.train}
    for m in trainer.modules.values():
        m.train()
    for epoch in range(start, setup.epochs):
        t0 = time.perf_counter()
        trainer.begin_epoch(epoch)
        steps = epoch_steps(setup.n_train, cfg.seed, epoch, global_batch)
        sums: dict[str, float] = {}
        with progress_bar(f"epoch {epoch + 1}/{setup.epochs}", total=len(steps), unit="steps") as bar:
            for step in steps:
                for slot in slots:
                    case = by_index[step[slot]]
                    seed_sample(cfg.seed, epoch, case.index)
                    trainer.micro_step(case, epoch)
                for k, v in trainer.finish_step().items():
                    sums[k] = sums.get(k, 0.0) + v
                bar.advance()
        record: dict[str, Any] = {"epoch": epoch, "seconds": time.perf_counter() - t0,
                                  **{k: v / max(len(steps), 1) for k, v in sums.items()}}
        last = epoch == setup.epochs - 1
        if setup.n_val and ((epoch + 1) % cfg.validate_every == 0 or last) or not setup.n_val and last:
            # Without validation cases the last epoch is "best" (VM recorded as 0).
            record.update(validate(trainer.generator, setup.val, trainer.in_channels, setup)
                          if setup.n_val else {"val_VM": 0.0})
            if record["val_VM"] > best["vm"]:
                best = {"vm": record["val_VM"], "epoch": epoch}
                if env.is_main:
                    save_model_file(best_path, trainer.generator,
                                    {**setup.model_meta, "epoch": epoch, "vm": record["val_VM"]})
        history.append(record)
        log.info("epoch %d: %s", epoch + 1,
                 ", ".join(f"{k}={v:.4g}" for k, v in record.items() if isinstance(v, float)))
        if env.is_main:
            save_checkpoint(_checkpoint_state(trainer, epoch, best, history), ckpt_dir, epoch,
                            keep=cfg.keep_checkpoints)
            atomic_write_bytes(json.dumps(history, indent=2).encode(), out / "history.json")
        if env.distributed:
            dist.barrier()
        if setup.on_epoch_end is not None:
            setup.on_epoch_end(epoch)
    setup.history[:] = history
    return best_path
