"""Collectives on the GPU: a one-rank NCCL group, and gradient averaging of two ranks sharing it
over gloo (the backend ``init_distributed(backend="gloo")`` forces on GPU nodes)."""

from __future__ import annotations

import os

import pytest
import torch

from hpc_seg.launch.spawn import spawn_ranks

pytestmark = pytest.mark.gpu


def _on_cpu() -> bool:
    return os.environ.get("HPC_SEG_GPU_TESTS_DEVICE") == "cpu"


def nccl_one_rank() -> float:
    import torch.distributed as dist

    from hpc_seg.launch.ddp import cleanup_distributed, init_distributed

    env = init_distributed(0, backend="nccl")
    dist.init_process_group("nccl", rank=0, world_size=1)  # hpc-seg makes none for one rank
    t = torch.full((1024,), 3.0, device=env.device)
    dist.all_reduce(t)
    dist.broadcast(t, src=0)
    cleanup_distributed()
    return float(t.sum())


def average_two_ranks(force_cpu: bool) -> list[float]:
    from hpc_seg.hadnet.train.loop import average_gradients
    from hpc_seg.launch.ddp import cleanup_distributed, init_distributed

    env = init_distributed(0, backend="gloo")
    device = torch.device("cpu") if force_cpu else env.device
    layer = torch.nn.Linear(4, 3).to(device)
    for p in layer.parameters():
        p.grad = torch.full_like(p, float(env.rank + 1))
    average_gradients(layer, env)
    cleanup_distributed()
    return sorted({float(v) for p in layer.parameters() for v in p.grad.flatten()})


def test_nccl_group_of_one_rank_reduces_on_the_gpu():
    if _on_cpu():
        pytest.skip("NCCL needs CUDA")
    assert spawn_ranks(1, nccl_one_rank, timeout_s=120) == [3.0 * 1024]


def test_two_ranks_average_gradients_over_gloo_on_the_device():
    results = spawn_ranks(2, average_two_ranks, _on_cpu(), timeout_s=120)
    assert results == [[1.5], [1.5]]
