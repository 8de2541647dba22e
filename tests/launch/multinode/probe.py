"""Driver of the two-jobs test: what one Ray-cluster job sees, written as JSON for the test.

Run inside the job as ``python -m tests.launch.multinode.probe OUT.json``. It keeps a copy of the
job's token (mode 600, in the test's own folder) so that the test can search every log for it.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import sys
import time
from pathlib import Path


def _files_holding(root: Path, needle: str) -> list[str]:
    hits = []
    for path in root.rglob("*"):
        try:
            if path.is_file() and not path.is_symlink() and needle in path.read_text(errors="ignore"):
                hits.append(str(path))
        except OSError:
            continue
    return hits


def main(out: str) -> None:
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    token_path = Path(os.environ["RAY_AUTH_TOKEN_PATH"])
    token = token_path.read_text()
    ray.init()   # RAY_ADDRESS, set by the job
    nodes = [n for n in ray.nodes() if n["Alive"]]

    @ray.remote(num_cpus=0)
    def where() -> str:
        time.sleep(2)   # both jobs' tasks overlap in time
        return socket.gethostname()

    seen = ray.get([where.options(scheduling_strategy=NodeAffinitySchedulingStrategy(
        n["NodeID"], soft=False)).remote() for n in nodes])
    head_tmp = Path(f"/tmp/r{os.environ['SLURM_JOB_ID']}-{socket.gethostname()}")
    result = {
        "job": os.environ["SLURM_JOB_ID"], "ray_address": os.environ["RAY_ADDRESS"],
        "token_path": str(token_path), "token_mode": oct(stat.S_IMODE(token_path.stat().st_mode)),
        "token_dir_mode": oct(stat.S_IMODE(token_path.parent.stat().st_mode)),
        "nodes": sorted(n["NodeManagerAddress"] for n in nodes), "task_hosts": sorted(seen),
        "head_tmp": str(head_tmp), "head_tmp_exists": head_tmp.is_dir(),
        "ray_files_with_token": _files_holding(head_tmp, token),
        "auth_mode": os.environ.get("RAY_AUTH_MODE"),
    }
    # The shared-path check that ingest and tune run first: a folder in this node's private /tmp
    # is refused (naming the node that cannot see it), the test's shared folder is accepted.
    from hpc_seg.errors import ConfigError
    from hpc_seg.runtime.ray_connect import check_shared_path

    try:
        check_shared_path(head_tmp / "not-shared", "the probe output")
        result["node_local_error"] = None
    except ConfigError as exc:
        result["node_local_error"] = str(exc)
    check_shared_path(Path(out).parent, "the probe output")
    ray.shutdown()
    Path(out).write_text(json.dumps(result))
    keep = Path(out).with_suffix(".token")
    keep.touch(mode=0o600)
    keep.write_text(token)


if __name__ == "__main__":
    main(sys.argv[1])
