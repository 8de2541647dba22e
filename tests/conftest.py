"""Shared test settings: small thread pools and no Ray auth tokens on the test machine."""

from __future__ import annotations

import os
import sys

import pytest

# Ray 2.60 writes and checks an auth token by default; tests talk only to local instances.
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("HPC_SEG_PLAIN_LOGS", "1")
# Two cores in CI: keep torch from oversubscribing when several processes run.
os.environ.setdefault("OMP_NUM_THREADS", "1")


GPU_TESTS_DEVICE_ENV = "HPC_SEG_GPU_TESTS_DEVICE"


def pytest_collection_modifyitems(config, items):
    """Tests marked ``gpu`` need CUDA: skipped, with the reason, where there is none.

    ``HPC_SEG_GPU_TESTS_DEVICE=cpu`` runs them on CPU instead (``hpc-seg bench gpu --dry-run``
    does), so their own code is known to work before GPU time is spent on them.
    """
    gpu_items = [item for item in items if item.get_closest_marker("gpu")]
    if not gpu_items or os.environ.get(GPU_TESTS_DEVICE_ENV) == "cpu":
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason=f"needs a CUDA GPU (torch {torch.__version__}: "
                                   "torch.cuda.is_available() is False)")
    for item in gpu_items:
        item.add_marker(skip)


def pytest_sessionfinish(session, exitstatus):
    session.config._hpc_seg_exitstatus = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    """Leave with pytest's own status once everything is reported. Native threads of libraries the
    suite loads (Ray's gRPC client, among others) have crashed in interpreter teardown after the
    summary was printed (SIGSEGV at exit), which would turn a green run red for a reason no test
    can see; nothing is left to clean up at this point."""
    status = getattr(config, "_hpc_seg_exitstatus", None)
    if status is not None and os.environ.get("HPC_SEG_TEST_HARD_EXIT", "1") == "1":
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
