"""Join the Ray cluster a job names (``RAY_ADDRESS``) or start a local instance, and check that a
path is on a file system every node of that cluster shares.

Inside ``hpc-seg cluster submit`` the driver runs with ``RAY_ADDRESS`` set to the job's own head,
so ``hpc-seg ingest --engine ray`` and ``hpc-seg tune`` join that cluster instead of starting a
private one. Outputs written by tasks on other nodes (ingest shards, Tune trial folders) are only
complete if every node writes to the same file system: :func:`check_shared_path` proves it by
reading a marker file from every node, and fails with one line naming the nodes that cannot.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpc_seg.errors import ConfigError, LaunchError
from hpc_seg.runtime.ray_local import start_local_ray

log = logging.getLogger(__name__)

#: seconds a node may take to start a worker and read the marker
SHARED_CHECK_TIMEOUT_S = 120.0


def cluster_address(explicit: str | None = None) -> str | None:
    """The Ray cluster to join: ``explicit`` (a CLI/config value) wins, then ``RAY_ADDRESS``;
    None means "start a local instance"."""
    env = os.environ.get("RAY_ADDRESS") or None
    if explicit == "auto":
        # Ray's own "auto" also scans this machine's processes for a head, which can be another
        # user's cluster: only the address a job advertises is taken.
        if env is None:
            raise ConfigError("Ray address 'auto': RAY_ADDRESS is not set (it is inside "
                              "`hpc-seg cluster submit`); give the head's address instead")
        return env
    return explicit or env


@dataclass(frozen=True)
class RaySession:
    """What :func:`ray_session` connected to."""

    address: str | None
    """The cluster joined, or None for a local instance started here."""
    started_here: bool
    """Whether this process called ``ray.init`` (and will shut it down)."""
    dashboard_url: str | None = None
    """The dashboard of a local instance started here (None: none, or not started here)."""

    @property
    def joined_cluster(self) -> bool:
        return self.address is not None


@contextmanager
def ray_session(address: str | None, **local_init: Any) -> Iterator[RaySession]:
    """Reuse this process's Ray connection, or join ``address``, or start a local instance with
    ``local_init`` (``num_cpus``, ``include_dashboard``...); shut down what was started here.

    Joining a cluster never passes ``local_init``: Ray refuses ``num_cpus`` for an existing
    cluster, whose resources are the nodes' own.
    """
    import ray

    if ray.is_initialized():
        yield RaySession(address=address, started_here=False)
        return
    try:
        if address:
            info = ray.init(address=address, log_to_driver=local_init.get("log_to_driver", True))
        else:
            info = start_local_ray(**local_init)  # loopback only, private token, no orphans
    except Exception as exc:  # ray raises ConnectionError, RuntimeError, ValueError...
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise LaunchError(f"{where}: cannot connect or start: {first}") from None
    if address:
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        log.info("joined the Ray cluster at %s: %d node(s), %g CPUs, %g GPUs", address, len(nodes),
                 ray.cluster_resources().get("CPU", 0), ray.cluster_resources().get("GPU", 0))
    try:
        yield RaySession(address=address, started_here=True,
                         dashboard_url=None if address else (info.dashboard_url or None))
    finally:
        ray.shutdown()


def _read_marker(path: str) -> str | None:
    """Task body: the marker's text as this node sees it (None: absent or unreadable)."""
    try:
        return Path(path).read_text()
    except OSError:
        return None


def unshared_nodes(expected: str, answers: dict[str, str | None]) -> list[str]:
    """The nodes (keys of ``answers``) that did not read ``expected``."""
    return sorted(node for node, text in answers.items() if text != expected)


def check_shared_path(path: str | Path, what: str) -> None:
    """Raise :class:`ConfigError` unless every alive node of the connected Ray cluster reads the
    same file under ``path`` (a directory, created if missing) as this driver wrote.

    One zero-CPU task pinned to each node reads a marker file; a node-local path (``/tmp`` on a
    real cluster) is invisible from the other nodes, and outputs written there would be scattered
    over the nodes' local disks.
    """
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    folder = Path(path).absolute()
    folder.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(16)
    marker = folder / f".hpc-seg-shared-check-{token[:8]}"
    marker.write_text(token)
    try:
        read = ray.remote(num_cpus=0, max_retries=0)(_read_marker)
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        refs = {f"{n['NodeManagerAddress']} ({n.get('NodeManagerHostname', '?')})":
                read.options(scheduling_strategy=NodeAffinitySchedulingStrategy(
                    node_id=n["NodeID"], soft=False)).remote(str(marker))
                for n in nodes}
        try:
            answers = dict(zip(refs, ray.get(list(refs.values()), timeout=SHARED_CHECK_TIMEOUT_S)))
        except ray.exceptions.GetTimeoutError:
            raise LaunchError(f"{folder}: the shared-path check got no answer from every Ray node "
                              f"within {SHARED_CHECK_TIMEOUT_S:.0f} s") from None
    finally:
        marker.unlink(missing_ok=True)
    missing = unshared_nodes(token, answers)
    if missing:
        raise ConfigError(f"{folder}: {what} must be on a file system shared by every Ray node, "
                          f"but {len(missing)} of {len(answers)} node(s) cannot see it: "
                          f"{', '.join(missing)}")
    log.info("%s: %s is shared by all %d Ray node(s)", folder, what, len(answers))


def node_identity() -> dict[str, str]:
    """Inside a Ray task: the node it runs on (address, host name, Ray node id)."""
    import socket

    import ray

    return {"node_ip": ray.util.get_node_ip_address(), "hostname": socket.gethostname(),
            "node_id": ray.get_runtime_context().get_node_id()}
