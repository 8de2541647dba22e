"""Device utilisation sampled in the background: ``nvidia-smi`` on a GPU, ``/proc/stat`` on CPU.

Samples carry this process's monotonic clock, so a phase (the packed trials, say) is averaged
over its own interval: :meth:`UtilisationSampler.mean`.
"""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

NVIDIA_SMI_QUERY = ["nvidia-smi", "--query-gpu=index,utilization.gpu,memory.used",
                    "--format=csv,noheader,nounits"]


def parse_nvidia_smi(line: str) -> tuple[int, float, float] | None:
    """``"0, 87, 10240"`` -> (GPU index, utilisation %, memory used MiB); None for other lines."""
    parts = [p.strip() for p in line.split(",")]
    if len(parts) != 3:
        return None
    try:
        return int(parts[0]), float(parts[1]), float(parts[2])
    except ValueError:  # "[N/A]", "[Not Supported]"
        return None


def read_cpu_times(path: Path = Path("/proc/stat")) -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs together, from the first line of /proc/stat."""
    fields = [int(x) for x in path.read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already counted in user
    return total - idle, total


def cpu_busy_percent(before: tuple[int, int], after: tuple[int, int]) -> float | None:
    busy, total = after[0] - before[0], after[1] - before[1]
    return 100.0 * busy / total if total > 0 else None


class UtilisationSampler:
    """``with UtilisationSampler("gpu", 0.5) as s: ...``; then ``s.mean(t0, t1)``."""

    def __init__(self, kind: str, interval_s: float = 0.5):
        if kind not in ("gpu", "cpu"):
            raise ValueError(f"sampler kind must be gpu or cpu, but got {kind!r}")
        self.kind, self.interval_s = kind, interval_s
        self.samples: list[tuple[float, float, float | None]] = []
        """(monotonic time, utilisation %, memory used MiB or None)"""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._proc: subprocess.Popen | None = None

    def __enter__(self) -> UtilisationSampler:
        target = self._gpu if self.kind == "gpu" else self._cpu
        if self.kind == "gpu":
            ms = max(int(self.interval_s * 1000), 100)
            self._proc = subprocess.Popen(NVIDIA_SMI_QUERY + [f"-lms={ms}"], text=True,
                                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self._thread = threading.Thread(target=target, name="utilisation-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _gpu(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        by_gpu: dict[int, tuple[float, float]] = {}
        for line in self._proc.stdout:
            parsed = parse_nvidia_smi(line)
            if parsed is None:
                continue
            index, util, mem = parsed
            if index in by_gpu:  # a new round of samples starts: the last one is complete
                self._add_round(by_gpu)
                by_gpu = {}
            by_gpu[index] = (util, mem)
        if by_gpu:
            self._add_round(by_gpu)

    def _add_round(self, by_gpu: dict[int, tuple[float, float]]) -> None:
        utils = [u for u, _ in by_gpu.values()]
        self.samples.append((time.monotonic(), sum(utils) / len(utils),
                             sum(m for _, m in by_gpu.values())))

    def _cpu(self) -> None:
        before = read_cpu_times()
        while not self._stop.wait(self.interval_s):
            after = read_cpu_times()
            busy = cpu_busy_percent(before, after)
            if busy is not None:
                self.samples.append((time.monotonic(), busy, None))
            before = after

    def mean(self, t0: float | None = None, t1: float | None = None) -> float | None:
        """Mean utilisation (%) of the samples taken between ``t0`` and ``t1`` (monotonic)."""
        vals = [u for t, u, _ in self.samples
                if (t0 is None or t >= t0) and (t1 is None or t <= t1)]
        return sum(vals) / len(vals) if vals else None

    def peak_memory_mb(self) -> float | None:
        mems = [m for _, _, m in self.samples if m is not None]
        return max(mems) if mems else None
