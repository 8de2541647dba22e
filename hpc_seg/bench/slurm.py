"""``hpc-seg bench slurm``: submit-to-result round trip of a trivial job, and a 100-task array.

The round trip is what a user waits for the smallest job: sbatch, scheduling, ``srun``, Python
start-up, the result pickle, and our waiter noticing it. On the local cluster SLURM allows about
1 s (``batch_sched_delay=0``).
"""

from __future__ import annotations

import logging
import statistics
import tempfile
import time
from pathlib import Path

from hpc_seg.bench.config import BenchSlurmConfig
from hpc_seg.errors import LaunchError
from hpc_seg.launch.config import LaunchConfig
from hpc_seg.launch.submit import gather, submit_array, submit_ddp, wait_job

log = logging.getLogger(__name__)


def trivial(x: int) -> int:
    """The benchmark's job body: as little as possible."""
    return x + 1


def run_bench(cfg: BenchSlurmConfig) -> dict[str, float]:
    """Time ``repeats`` single-job round trips and one array; returns the figures (seconds)."""
    with tempfile.TemporaryDirectory(prefix="hpc-seg-bench-slurm-") as tmp:
        root = cfg.folder or Path(tmp)
        launch = LaunchConfig(executor=cfg.executor, time_min=5, mem_gb=0.1, signal_delay_s=30,
                              array_parallelism=cfg.array_parallelism, job_name="bench")
        trips = []
        for i in range(cfg.repeats):
            t0 = time.perf_counter()
            job = submit_ddp(trivial, (i,), launch, root / "roundtrip", name=f"trip{i}")
            (result,) = wait_job(job, timeout_s=120)
            trips.append(time.perf_counter() - t0)
            if result != i + 1:
                raise LaunchError(f"round trip {i}: expected {i + 1}, got {result!r}")
            log.info("round trip %d/%d: %.2f s", i + 1, cfg.repeats, trips[-1])
        t0 = time.perf_counter()
        run = submit_array(trivial, list(range(cfg.array_size)), launch, root / "array", name="array")
        outs = gather(run, timeout_s=1800)
        array_s = time.perf_counter() - t0
        bad = [o for o in outs if not o.ok or o.result != o.index + 1]
        if bad:
            raise LaunchError(f"array: {len(bad)} task(s) wrong or failed, first: {bad[0]}")
    return {"roundtrip_median_s": statistics.median(trips), "roundtrip_min_s": min(trips),
            "roundtrip_max_s": max(trips), "array_wall_s": array_s,
            "array_tasks_per_s": cfg.array_size / array_s}
