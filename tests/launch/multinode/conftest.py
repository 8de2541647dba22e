"""The two-node local SLURM for the multi-node tests.

``slurm/local-cluster up --nodes 2`` turns the shared one-node cluster into two nodes (network
namespaces n1 and n2, each with its own address, host name and /tmp), and every job running at
that moment is cancelled. So the tests are opt-in (``HPC_SEG_TEST_MULTINODE=1``, set by
``.ci/run``); on a shared machine run them under ``flock -x /tmp/heavy.lock``. The default
one-node cluster is restored after the package's last test, even when a test failed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
SCRIPT = REPO / "slurm" / "local-cluster"
#: on the machine's disk, outside every node's private /tmp: all nodes see it
SHARED_ROOT = Path("/var/tmp/hpc-seg-multinode-tests")


def _restore_one_node() -> None:
    up = subprocess.run([str(SCRIPT), "up"], capture_output=True, text=True, timeout=600)
    assert up.returncode == 0, f"restoring the one-node cluster failed: {up.stderr}"
    sinfo = subprocess.run(["sinfo", "-h", "-N", "-o", "%N %t"], capture_output=True, text=True,
                           timeout=30)
    assert sinfo.returncode == 0 and len(sinfo.stdout.split()) == 2, sinfo.stdout + sinfo.stderr


@pytest.fixture(scope="package")
def two_nodes() -> Iterator[list[str]]:
    """The two-node cluster for this package's tests; yields the node names."""
    if os.environ.get("HPC_SEG_TEST_MULTINODE") != "1":
        pytest.skip("reconfigures the shared SLURM into two nodes (cancels running jobs); "
                    "set HPC_SEG_TEST_MULTINODE=1")
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2 (network namespaces)")
    up = subprocess.run([str(SCRIPT), "up", "--nodes", "2"], capture_output=True, text=True,
                        timeout=600)
    if up.returncode != 0:
        _restore_one_node()
        pytest.fail(f"slurm/local-cluster up --nodes 2 failed: {up.stderr}")
    # Jobs start in the submitting directory; the nodes import the tests package from there.
    old_cwd = os.getcwd()
    os.chdir(REPO)
    try:
        yield ["n1", "n2"]
    finally:
        os.chdir(old_cwd)
        _restore_one_node()


@pytest.fixture(autouse=True)
def _still_two_nodes(request) -> None:
    """Before each test: the two-node configuration is in place (`up --nodes 2` is quick when
    it is, and rewrites and reconfigures a slurm.conf that a one-node `up` replaced meanwhile)."""
    if "two_nodes" not in request.fixturenames:
        return
    request.getfixturevalue("two_nodes")
    up = subprocess.run([str(SCRIPT), "up", "--nodes", "2"], capture_output=True, text=True,
                        timeout=600)
    assert up.returncode == 0, f"slurm/local-cluster up --nodes 2 failed: {up.stderr}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.call_failed = report.failed


@pytest.fixture()
def shared_dir(request) -> Iterator[Path]:
    """A fresh folder every node of the two-node cluster sees (pytest's tmp_path is under /tmp,
    which is private to each node there); kept when the test fails, for its job logs."""
    path = SHARED_ROOT / f"{request.node.name[:40]}-{uuid.uuid4().hex[:6]}"
    path.mkdir(parents=True)
    yield path
    if getattr(request.node, "call_failed", False):
        print(f"kept {path} (job logs of the failed test)")
    else:
        shutil.rmtree(path, ignore_errors=True)
