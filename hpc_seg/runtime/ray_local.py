"""Start the embedded (single-machine) Ray safely: loopback only, a private token, no orphans.

Three things Ray does by default that a batch tool on a shared machine must not:

- it binds its core services, its dashboard agent and three Prometheus metrics endpoints to the
  machine's address or to all interfaces (the metrics answer without authentication). Ray keeps
  everything on 127.0.0.1 only when it believes no cluster is possible, which it reads from
  ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER``; setting that to 0 (and ``_node_ip_address`` to the
  loopback) makes a local instance listen on 127.0.0.1 alone;
- it writes ``~/.ray/auth_token`` with the umask's mode (0644 usually): the folder is made 0700
  before the first start and the token 0600 after every start;
- after a ``kill -9`` of the driver its dashboard agent and runtime-env agent live on for about a
  minute with their ports open (they wait 60 s for the dead GCS). Each start therefore records its
  session, and the next start stops what is left of sessions whose driver is gone.

A multi-node cluster (``ray start`` on SLURM nodes) is not started here.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hpc_seg.runtime.threads import allocated_cpus

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
#: Ray reads this at import and in every process it starts: 0 = a single-machine instance
#: whose services all bind the loopback address
_CLUSTER_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def registry_dir() -> Path:
    """Where the sessions this user's hpc-seg started are recorded (one JSON file each)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hpc-seg" / "ray-sessions"


def token_path() -> Path:
    """Ray's token file (``RAY_AUTH_TOKEN_PATH`` or ``~/.ray/auth_token``)."""
    return Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")


def process_start(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (tells a reused PID apart); None if it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def protect_token() -> None:
    """Make the token folder 0700 (before Ray creates a token in it) and the token file 0600."""
    path = token_path()
    try:
        if not path.parent.exists():
            path.parent.mkdir(mode=0o700, parents=True)
        if path.exists() and stat.S_IMODE(path.stat().st_mode) & 0o077:
            path.chmod(0o600)
    except OSError as exc:  # a foreign-owned file: say so, do not fail the run
        log.warning("%s: cannot make the Ray token private: %s", path, exc.strerror or exc)


def _session_processes(session_dir: str) -> list[int]:
    """This user's processes holding a file open under ``session_dir`` (Ray's logs)."""
    uid, pids = os.getuid(), []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if entry.stat().st_uid != uid:
                continue
            for fd in (entry / "fd").iterdir():
                if os.readlink(fd).startswith(session_dir + "/"):
                    pids.append(int(entry.name))
                    break
        except OSError:      # gone meanwhile, or not ours to read
            continue
    return pids


def stop_orphans() -> int:
    """Kill what is left of local sessions whose hpc-seg driver died; returns how many."""
    killed = 0
    directory = registry_dir()
    for record in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        try:
            info = json.loads(record.read_text())
            pid, start, session = int(info["pid"]), info["start"], str(info["session_dir"])
        except (OSError, ValueError, KeyError, TypeError):
            record.unlink(missing_ok=True)
            continue
        if process_start(pid) == start:
            continue                            # its driver still runs
        for orphan in _session_processes(session):
            try:
                os.kill(orphan, signal.SIGKILL)
                killed += 1
            except OSError:
                pass
        record.unlink(missing_ok=True)
    if killed:
        log.info("stopped %d Ray process(es) left over by a killed hpc-seg run", killed)
    return killed


def _record(session_dir: str) -> Path:
    path = registry_dir() / f"{os.getpid()}-{int(time.time())}.json"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"pid": os.getpid(), "start": process_start(os.getpid()),
                                    "session_dir": session_dir}))
    except OSError as exc:
        log.warning("%s: cannot record the Ray session (%s); leftovers of a kill -9 will not "
                    "be stopped", path, exc.strerror or exc)
    return path


@contextmanager
def _loopback_only() -> Iterator[None]:
    """Ray's single-machine switch, for this process (already imported Ray reads the constant)
    and the processes it starts (they read the environment)."""
    import ray._private.ray_constants as constants

    old_env, old_const = os.environ.get(_CLUSTER_ENV), constants.ENABLE_RAY_CLUSTER
    os.environ[_CLUSTER_ENV] = "0"
    constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        constants.ENABLE_RAY_CLUSTER = old_const
        if old_env is None:
            os.environ.pop(_CLUSTER_ENV, None)
        else:
            os.environ[_CLUSTER_ENV] = old_env


def start_local_ray(**init_kwargs: Any) -> Any:
    """``ray.init(**init_kwargs)`` for a new local instance bound to 127.0.0.1 (returns Ray's
    context info). Leftovers of killed earlier runs are stopped first; the caller shuts the
    instance down with ``ray.shutdown()`` as usual (a record of a finished run is dropped at the
    next start)."""
    import ray

    stop_orphans()
    protect_token()
    if init_kwargs.get("num_cpus") is None:  # Ray counts the node's cores, not the allocation
        init_kwargs["num_cpus"] = allocated_cpus().cpus
    with _loopback_only():
        info = ray.init(_node_ip_address=LOOPBACK, **init_kwargs)
    protect_token()
    _record(ray._private.worker._global_node.get_session_dir_path())
    return info
