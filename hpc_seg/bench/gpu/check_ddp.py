"""Check 4: gradient averaging over NCCL equals gloo (and one process) within bf16 tolerance.

Each run trains a few HAD-Net pre-training steps with the real trainer (``micro_step`` and
``finish_step``, whose ``average_gradients`` is the all-reduce under test), the data order of the
training loop (``epoch_steps``/``rank_slots``) and per-sample seeds, in ranks started by
:func:`~hpc_seg.launch.spawn.spawn_ranks` that join through
:func:`~hpc_seg.launch.ddp.init_distributed`. Every run sees the same two samples per optimiser
step: one process accumulating both (the reference, no process group), one rank in a group of
one per backend, and two ranks per backend sharing the device. The averaged gradients are taken
right before each optimiser step and compared by relative L2 difference; the reference runs
twice, and how far those two differ (bf16 kernels need not be deterministic) is reported beside.

hpc-seg makes no process group for a single rank (there is nothing to average), so the
one-rank runs make one here, to show the backend's own collectives run on this device. Two NCCL
ranks on one GPU are refused by recent NCCL releases ("Duplicate GPU detected"); that refusal
is recorded, not counted as a failure. Any other failed run fails the check.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpc_seg.bench.gpu.profile import GpuBenchProfile
from hpc_seg.bench.gpu.report import CheckOutcome

RANK_TIMEOUT_S = {"cuda": 90.0, "cpu": 240.0}
"""a run whose ranks are still going after this long (a collective that never completes) is
killed and recorded"""
NCCL_SHARED_GPU_REFUSAL = "Duplicate GPU"


@dataclass(frozen=True)
class DdpRun:
    """One training run of the comparison."""

    label: str
    backend: str | None
    """None: one process without a process group (hpc-seg's single-process path)"""
    world_size: int
    grad_accum: int
    size: tuple[int, int, int]
    k: int
    steps: int
    device: str
    out: str
    """folder for each rank's gradients and weights (too large for the result pipe)"""
    seed: int = 3


def train_rank(run: DdpRun) -> dict[str, Any]:
    """Per rank: the run's steps; saves averaged gradients, losses and final weights."""
    import torch
    import torch.distributed as dist

    from hpc_seg.hadnet.train.config import HadnetTrainConfig
    from hpc_seg.hadnet.train.data import epoch_steps, rank_slots, toy_cases
    from hpc_seg.hadnet.train.loop import broadcast_module, seed_sample
    from hpc_seg.hadnet.train.pretrain import PretrainTrainer
    from hpc_seg.launch.ddp import cleanup_distributed, init_distributed
    from hpc_seg.runtime.device import amp_dtype

    torch.set_num_threads(1)
    env = init_distributed(run.seed, backend=run.backend)
    if run.backend is not None and not dist.is_initialized():
        dist.init_process_group(run.backend, rank=env.rank, world_size=env.world_size)
        env = dataclasses.replace(env, backend=run.backend)
    if run.device == "cpu":
        env = dataclasses.replace(env, device=torch.device("cpu"))
    cfg = HadnetTrainConfig(k=run.k, device=run.device, amp=True, augment=True, seed=run.seed,
                            grad_accum=run.grad_accum, threads=1)
    trainer = PretrainTrainer(cfg, env, "student")
    broadcast_module(trainer.generator, env)
    global_batch = env.world_size * cfg.grad_accum
    cases = toy_cases(run.steps * global_batch, run.size, seed=1)
    steps = epoch_steps(len(cases), cfg.seed, 0, global_batch)[:run.steps]
    slots = rank_slots(env.rank, env.world_size, cfg.grad_accum)
    params = [p for p in trainer.generator.parameters() if p.requires_grad]
    grads: list[torch.Tensor] = []

    def take_grads(*_: Any) -> None:
        grads.append(torch.cat([p.grad.detach().reshape(-1).float() for p in params]).cpu())

    trainer.optimizers["generator"].register_step_pre_hook(take_grads)
    trainer.begin_epoch(0)
    losses, t0 = [], time.perf_counter()
    for step in steps:
        for slot in slots:
            case = cases[step[slot]]
            seed_sample(cfg.seed, 0, case.index)
            trainer.micro_step(case, 0)
        losses.append(trainer.finish_step()["loss"])
    seconds = time.perf_counter() - t0
    collective_ok = None
    if dist.is_initialized():
        # The backend's all-reduce on this device: the sum of the (already averaged, so equal)
        # gradients over the ranks is world_size times them.
        t = grads[-1].clone().to(env.device)  # a copy: on CPU .to() would alias the record
        dist.all_reduce(t)
        collective_ok = bool(torch.allclose(t.cpu() / env.world_size, grads[-1], rtol=1e-5,
                                            atol=1e-8))
    weights = torch.cat([p.detach().reshape(-1).float() for p in params]).cpu()
    path = Path(run.out) / f"{run.label}-rank{env.rank}.pt"
    torch.save({"grads": torch.stack(grads), "weights": weights, "losses": losses}, path)
    cleanup_distributed()
    return {"rank": env.rank, "path": str(path), "seconds": seconds,
            "backend": env.backend, "collective_ok": collective_ok,
            "precision": "bf16" if amp_dtype(env.device, True) is not None else "fp32"}


def relative_l2(a: Any, b: Any) -> float:
    """||a - b|| / ||b|| (0 when both are zero)."""
    import torch

    num, den = float(torch.linalg.vector_norm(a - b)), float(torch.linalg.vector_norm(b))
    return num / den if den > 0 else (0.0 if num == 0 else float("inf"))


def _load(rows: list[dict[str, Any]]) -> dict[str, Any]:
    from hpc_seg.runtime.checkpoint import load_weights

    data = [load_weights(r["path"]) for r in rows]
    # every rank holds the same averaged gradients and weights; the loss is each rank's share
    return {"grads": data[0]["grads"], "weights": data[0]["weights"],
            "losses": [sum(d["losses"][s] for d in data) / len(data)
                       for s in range(len(data[0]["losses"]))]}


def compare(run: dict[str, Any], ref: dict[str, Any]) -> dict[str, float]:
    """Largest relative difference of the per-step averaged gradients and of the losses."""
    grads = max(relative_l2(g, r) for g, r in zip(run["grads"], ref["grads"]))
    losses = max(abs(a - b) / max(abs(b), 1e-12) for a, b in zip(run["losses"], ref["losses"]))
    return {"grad_rel_l2": grads, "loss_rel": losses,
            "weights_rel_l2": relative_l2(run["weights"], ref["weights"])}


def run_check(profile: GpuBenchProfile, workdir: Path) -> CheckOutcome:
    from hpc_seg.launch.spawn import spawn_ranks

    c = profile.ddp
    size = tuple(c.size)
    # the reference twice: how far two identical runs differ is the floor of every comparison
    runs = [DdpRun(label=label, backend=None, world_size=1, grad_accum=2, size=size, k=c.k,
                   steps=c.steps, device=profile.device, out=str(workdir))
            for label in ("single", "single_again")]
    backends = list(dict.fromkeys([c.reference_backend, c.backend]))
    for ws in c.world_sizes:
        for backend in backends:
            runs.append(DdpRun(label=f"{backend}_ws{ws}", backend=backend, world_size=ws,
                               grad_accum=2 // ws if 2 % ws == 0 else 1, size=size, k=c.k,
                               steps=c.steps, device=profile.device, out=str(workdir)))
    if any(r.world_size * r.grad_accum != 2 for r in runs):
        raise ValueError(f"world sizes {c.world_sizes}: each run must see 2 samples per step "
                         "(world size 1 or 2)")
    figures: dict[str, Any] = {"device": profile.device, "size": "x".join(map(str, size)),
                               "k": c.k, "steps": c.steps, "runs": {}, "comparisons": {}}
    loaded: dict[str, dict[str, Any]] = {}
    refused: list[str] = []
    failed: list[str] = []
    for run in runs:
        print(f"ddp run {run.label}: {run.world_size} rank(s), grad_accum {run.grad_accum}",
              flush=True)
        t0 = time.perf_counter()
        try:
            rows = spawn_ranks(run.world_size, train_rank, run,
                               timeout_s=RANK_TIMEOUT_S[profile.device])
        except Exception as exc:  # noqa: BLE001 - a refused or broken run is a figure here
            text = str(exc)
            first = text.strip().splitlines()[-1] if text.strip() else type(exc).__name__
            shared = run.backend == "nccl" and run.world_size > 1
            if shared and NCCL_SHARED_GPU_REFUSAL in text:
                refused.append(run.label)
                figures["runs"][run.label] = {"refused": first[:500]}
            elif run.backend is None:
                raise
            else:
                failed.append(run.label)
                figures["runs"][run.label] = {"error": f"{type(exc).__name__}: {first[:500]}"}
            print(f"  {run.label}: {type(exc).__name__}: {first[:300]}", flush=True)
            continue
        if any(r["collective_ok"] is False for r in rows):
            # not a missed target: the backend summed wrongly, every figure after it is moot
            raise RuntimeError(f"run {run.label}: {run.backend}'s all-reduce over "
                               f"{run.world_size} rank(s) did not return the sum on "
                               f"{profile.device}")
        loaded[run.label] = _load(rows)
        figures["runs"][run.label] = {
            "world_size": run.world_size, "grad_accum": run.grad_accum,
            "backend": rows[0]["backend"], "precision": rows[0]["precision"],
            "seconds": time.perf_counter() - t0,
            "train_seconds": max(r["seconds"] for r in rows)}
    if failed:
        # only NCCL's refusal of two ranks on one GPU is an answer; any other failure is a bug
        raise RuntimeError("; ".join(f"{label}: {figures['runs'][label]['error']}"
                                     for label in failed))
    ref = loaded["single"]
    pairs = [("single_again", "single")]
    pairs += [(label, "single") for label in loaded if not label.startswith("single")]
    if c.backend != c.reference_backend:
        pairs += [(f"{c.backend}_ws{ws}", f"{c.reference_backend}_ws{ws}") for ws in c.world_sizes]
    worst = 0.0
    for a, b in pairs:
        if a in loaded and b in loaded:
            cmp = compare(loaded[a], loaded[b] if b != "single" else ref)
            figures["comparisons"][f"{a} vs {b}"] = cmp
            if a != "single_again":
                worst = max(worst, cmp["grad_rel_l2"], cmp["loss_rel"])
    noise = figures["comparisons"].pop("single_again vs single")
    figures.update(worst_rel_diff=worst, run_to_run=noise, tolerance=c.tolerance,
                   refused=refused)
    met = worst <= c.tolerance and bool(figures["comparisons"])
    summary = "; ".join(f"{k} {v['grad_rel_l2']:.1e}" for k, v in figures["comparisons"].items())
    summary += f"; identical runs {noise['grad_rel_l2']:.1e}"
    if refused:
        summary += f"; refused by NCCL: {', '.join(refused)}"
    precision = next((r.get("precision") for r in figures["runs"].values() if "precision" in r),
                     "?")
    return CheckOutcome(figures=figures,
                        target=f"averaged gradients and losses of every run within "
                               f"{c.tolerance:g} (relative) of one process and of "
                               f"{c.reference_backend} ({precision})",
                        met=met, summary=summary)
