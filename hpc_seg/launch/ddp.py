"""The torch.distributed environment of a job, wherever it runs.

One call, :func:`init_distributed`, works in three places:

- inside a submitit job on SLURM (nodes x tasks_per_node): submitit's
  ``TorchDistributedEnvironment`` exports RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT;
- under ``torchrun`` or any launcher that already set those variables;
- a plain single process (world size 1, no process group).

The backend is NCCL when the process has a GPU and gloo otherwise, and every rank is seeded with
``seed + rank`` so that augmentation streams differ between ranks but reproduce across runs.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass

import torch
import torch.distributed as dist

from hpc_seg.errors import LaunchError
from hpc_seg.launch.netif import interface_towards, ipv4_of, resolve_ipv4
from hpc_seg.runtime.seeding import seed_everything

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistEnv:
    """What a rank knows about the job it belongs to."""

    rank: int
    local_rank: int
    world_size: int
    backend: str | None
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _export_submitit_env() -> None:
    """Inside a submitit job (SLURM, or the local executor with several tasks), export the
    torch.distributed variables if no launcher set them already."""
    if "RANK" in os.environ:
        return
    on_slurm = os.environ.get("SUBMITIT_EXECUTOR") == "slurm"
    local_multi = int(os.environ.get("SUBMITIT_LOCAL_NTASKS", "1")) > 1
    if not (on_slurm or local_multi):
        return
    from submitit.helpers import TorchDistributedEnvironment

    TorchDistributedEnvironment().export(set_cuda_visible_devices=False)


def _first_global_ipv4() -> str | None:
    """This machine's first non-loopback IPv4 address (None: it has none)."""
    for _, name in socket.if_nameindex():
        addr = ipv4_of(name)
        if addr and not addr.startswith("127."):
            return addr
    return None


def bind_node_interface(world_size: int) -> None:
    """Make the rendezvous and the collectives use the nodes' real addresses.

    ``MASTER_ADDR`` (submitit sets the first node's host name) becomes that node's address, and
    gloo (and NCCL's bootstrap) bind the interface towards it: by default gloo binds whatever this
    host's name resolves to, which is loopback wherever /etc/hosts maps it there, and then the
    other nodes cannot connect. Settings the user made (``GLOO_SOCKET_IFNAME``...) are kept.
    """
    master = os.environ.get("MASTER_ADDR")
    if world_size <= 1 or not master:
        return
    addr = resolve_ipv4(master)
    nodes = int(os.environ.get("SLURM_JOB_NUM_NODES") or os.environ.get("SLURM_NNODES") or "1")
    if addr.startswith("127.") and nodes > 1:
        here = socket.gethostname().split(".")[0]
        own = _first_global_ipv4() if here == master.split(".")[0] else None
        if own is None:
            raise LaunchError(f"MASTER_ADDR {master} resolves to {addr} (loopback) on {here}, but "
                              f"the job spans {nodes} nodes: the other ranks could not reach it; "
                              "map the node names to their addresses, or set MASTER_ADDR")
        addr = own   # the first node itself, whose own name maps to loopback here
    os.environ["MASTER_ADDR"] = addr
    ifname, local = interface_towards(addr)
    for var in ("GLOO_SOCKET_IFNAME", "NCCL_SOCKET_IFNAME"):
        os.environ.setdefault(var, ifname)
    log.info("rendezvous at %s:%s; collectives on %s (%s)", addr, os.environ.get("MASTER_PORT"),
             os.environ["GLOO_SOCKET_IFNAME"], local)


def init_distributed(seed: int = 0, backend: str | None = None) -> DistEnv:
    """Join the job's process group (if it has more than one rank), pick the device, seed.

    ``backend`` overrides the choice (``"gloo"`` forces CPU collectives even on GPU nodes).
    """
    _export_submitit_env()
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        device = torch.device("cuda", local_rank % torch.cuda.device_count())
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    chosen = None
    if world_size > 1:
        chosen = backend or ("nccl" if device.type == "cuda" else "gloo")
        if not dist.is_initialized():
            bind_node_interface(world_size)
            dist.init_process_group(backend=chosen, rank=rank, world_size=world_size)
        log.info("rank %d/%d (local %d) joined the %s process group on %s", rank, world_size,
                 local_rank, chosen, device)
    seed_everything(seed + rank)
    return DistEnv(rank=rank, local_rank=local_rank, world_size=world_size, backend=chosen,
                   device=device)


def cleanup_distributed() -> None:
    """Leave the process group if this process joined one."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
