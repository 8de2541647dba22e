"""Functions that the SLURM integration tests run on the node (importable there as tests.launch.jobfns)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any


def square_or_fail(spec: dict[str, Any]) -> int:
    """Square ``spec['x']``; raise when ``spec['fail']`` and the marker file does not exist yet."""
    marker = spec.get("fixed_marker")
    if spec.get("fail") and not (marker and Path(marker).exists()):
        raise ValueError(f"intentional failure for x={spec['x']}")
    return spec["x"] ** 2


def add(a: int, b: int) -> int:
    return a + b


def sleep_then(seconds: float, value: Any = None) -> Any:
    time.sleep(seconds)
    return value


def allreduce_ranks_local() -> dict[str, Any]:
    """allreduce_ranks without the SLURM-only fields (for the local executor)."""
    return allreduce_ranks(slurm=False)


def allreduce_ranks(slurm: bool = True) -> dict[str, Any]:
    """Join the job's gloo group and sum rank+1 over all ranks."""
    import torch
    import torch.distributed as dist

    from hpc_seg.launch.ddp import cleanup_distributed, init_distributed

    torch.set_num_threads(1)
    env = init_distributed(seed=7)
    t = torch.tensor([float(env.rank + 1)])
    dist.all_reduce(t)
    out = {"rank": env.rank, "local_rank": env.local_rank, "world_size": env.world_size,
           "backend": env.backend, "sum": float(t.item()), "seed_draw": float(torch.rand(1).item()),
           "slurm_procid": int(os.environ["SLURM_PROCID"]) if slurm else None}
    cleanup_distributed()
    return out


def train_toy(ckpt_dir: str, epochs: int, seed: int, epoch_sleep_s: float = 0.0) -> dict[str, Any]:
    """A training-like loop that checkpoints every epoch and resumes from the newest checkpoint.

    The global RNG drives both initialisation and the per-epoch data, so a resume that restored the
    wrong RNG state (or lost an epoch) would end with different weights.
    """
    import torch

    from hpc_seg.launch.tasks import record_outputs
    from hpc_seg.runtime.checkpoint import load_latest, rng_state, save_checkpoint, set_rng_state

    torch.set_num_threads(1)
    torch.manual_seed(seed)
    model = torch.nn.Linear(8, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    start, loss = 0, float("nan")
    state = load_latest(ckpt_dir)
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optim"])
        set_rng_state(state["rng"])
        start, loss = state["epoch"] + 1, state["loss"]
    for epoch in range(start, epochs):
        x = torch.randn(64, 8)
        y = x.sum(dim=1, keepdim=True) + 0.1 * torch.randn(64, 1)
        for _ in range(20):
            opt.zero_grad()
            batch_loss = torch.nn.functional.mse_loss(model(x), y)
            batch_loss.backward()
            opt.step()
        loss = float(batch_loss.item())
        save_checkpoint({"model": model.state_dict(), "optim": opt.state_dict(), "rng": rng_state(),
                         "epoch": epoch, "loss": loss}, ckpt_dir, epoch, keep=2)
        time.sleep(epoch_sleep_s)
    record_outputs(ckpt_dir)
    return {"weight": model.weight.detach().clone(), "bias": model.bias.detach().clone(),
            "loss": loss, "first_epoch": start,
            "restarts": int(os.environ.get("SLURM_RESTART_COUNT", "0"))}
