"""Run a per-rank function as N local processes (gloo), the way torchrun would.

Used by the DDP tests and ``hpc-seg bench hadnet`` (1 vs 2 processes on CPU) where starting a
SLURM job would measure the scheduler rather than the training. Each child gets RANK, WORLD_SIZE,
LOCAL_RANK, MASTER_ADDR and MASTER_PORT, which :func:`hpc_seg.launch.ddp.init_distributed` reads.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from typing import Any

import torch.multiprocessing as mp


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _child(rank: int, world_size: int, port: int, fn: Callable[..., Any], args: tuple,
           queue: Any) -> None:
    os.environ.update({"RANK": str(rank), "WORLD_SIZE": str(world_size), "LOCAL_RANK": str(rank),
                       "LOCAL_WORLD_SIZE": str(world_size),
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    queue.put((rank, fn(*args)))


def spawn_ranks(world_size: int, fn: Callable[..., Any], *args: Any,
                timeout_s: float | None = None) -> list[Any]:
    """Call ``fn(*args)`` in ``world_size`` spawned processes; return their results by rank.

    ``fn`` must be importable (top-level) and its results picklable and small (they pass through
    a pipe that is read once every rank has finished). A failing rank raises
    ``torch.multiprocessing.ProcessRaisedException`` here with the child's traceback, and the
    other ranks are stopped. With ``timeout_s``, ranks still running then (a collective that never
    completes) are killed and ``TimeoutError`` is raised.
    """
    ctx = mp.get_context("spawn")
    queue = ctx.SimpleQueue()
    procs = mp.start_processes(_child, args=(world_size, free_port(), fn, args, queue),
                               nprocs=world_size, join=False, start_method="spawn")
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while not procs.join(timeout=0.5):
        if deadline is not None and time.monotonic() > deadline:
            for p in procs.processes:
                if p.is_alive():
                    p.kill()
            for p in procs.processes:
                p.join(10)
            raise TimeoutError(f"{fn.__name__}: {world_size} rank(s) still running after "
                               f"{timeout_s:g} s; killed")
    results = dict(queue.get() for _ in range(world_size))
    return [results[r] for r in range(world_size)]
