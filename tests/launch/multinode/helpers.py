"""Shared by the multi-node tests: submit through `hpc-seg cluster submit`, inspect what is left."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

HPC_SEG = [sys.executable, "-m", "hpc_seg.cli"]
NAMESPACES = ("hpcseg-n1", "hpcseg-n2")
REPO = Path(__file__).resolve().parents[3]


def cluster_submit(log_dir: Path, driver: list[str], *, cpus: int = 2, name: str = "mn-test",
                   background: bool = False, timeout_s: float = 400) -> subprocess.CompletedProcess | subprocess.Popen:
    """`hpc-seg cluster submit --wait` of ``driver`` on both nodes, small and non-exclusive."""
    cmd = [*HPC_SEG, "cluster", "submit", "--nodes", "2", "--cpus-per-node", str(cpus),
           "--mem-gb", "3", "--no-exclusive", "--no-dashboard", "--object-store-gb", "0.25",
           "--time-min", "10", "--start-timeout-s", "200", "--start-attempts", "3",
           "--job-name", name,
           "--log-dir", str(log_dir), "--wait", "--", *driver]
    # The job's driver and Ray workers import test helpers (tests.hpo.toy_trainer) by module path:
    # the repository must be on their path, as it is when pytest runs from it (sbatch exports it).
    path = os.environ.get("PYTHONPATH")
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{path}" if path else str(REPO)}
    if background:
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=env)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env)


def job_id_of(stdout: str) -> str:
    match = re.search(r"submitted job (\d+)", stdout)
    assert match, f"no job id in: {stdout}"
    return match.group(1)


def namespace_processes() -> dict[str, list[str]]:
    """Per node namespace: 'comm(pid)' of every live process in it (slurmd alone when idle)."""
    out = {}
    for ns in NAMESPACES:
        pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True,
                              check=True).stdout.split()
        procs = []
        for pid in pids:
            try:
                comm = Path(f"/proc/{pid}/comm").read_text().strip()
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if state != "Z":
                procs.append(f"{comm}({pid})")
        out[ns] = procs
    return out


def wait_namespaces_idle(timeout_s: float = 30) -> dict[str, list[str]]:
    """Wait until only slurmd is left in each node; returns what is left at the end."""
    deadline = time.monotonic() + timeout_s
    while True:
        left = {ns: [p for p in procs if not p.startswith("slurmd(")]
                for ns, procs in namespace_processes().items()}
        if not any(left.values()) or time.monotonic() > deadline:
            return left
        time.sleep(0.5)


class OutsideRay:
    """A Ray head started outside SLURM on the host, as another user's instance would be."""

    def __init__(self, tmp_dir: Path, port: int = 19000):
        env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0"}
        env.pop("RAY_ADDRESS", None)
        ray_bin = str(Path(sys.executable).parent / "ray")
        self.proc = subprocess.Popen(
            [ray_bin, "start", "--head", "--block", "--disable-usage-stats", "--num-cpus=1",
             "--include-dashboard=false", f"--temp-dir={tmp_dir}", f"--port={port}",
             f"--node-manager-port={port + 1}", f"--object-manager-port={port + 2}",
             f"--dashboard-agent-listen-port={port + 3}", f"--dashboard-agent-grpc-port={port + 4}",
             f"--runtime-env-agent-port={port + 5}", f"--metrics-export-port={port + 6}",
             f"--ray-client-server-port={port + 7}", f"--min-worker-port={port + 10}",
             f"--max-worker-port={port + 40}", "--object-store-memory=100000000"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self.children = self._wait_children()

    def _wait_children(self, timeout_s: float = 90) -> list[int]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            kids = self._children()
            if any(Path(f"/proc/{p}/comm").read_text().strip() == "raylet" for p in kids
                   if Path(f"/proc/{p}/comm").exists()):
                return kids
            assert self.proc.poll() is None, "the outside Ray head exited at start"
            time.sleep(0.5)
        raise AssertionError("the outside Ray head has no raylet after 90 s")

    def _children(self) -> list[int]:
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(self.proc.pid)],
                             capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]

    def alive(self) -> bool:
        """The head process and every process it had started are still running."""
        def up(pid: int) -> bool:
            try:
                return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
            except OSError:
                return False
        return self.proc.poll() is None and all(up(p) for p in self.children)

    def stop(self) -> None:
        """SIGTERM to our own `ray start --block` (it stops its children), SIGKILL the group after 20 s."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
