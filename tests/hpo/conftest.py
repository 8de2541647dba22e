"""Fixtures of the search tests: one local Ray per test module, and toy-trainer search configs."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from hpc_seg.config import from_dict
from hpc_seg.hpo.search_config import SearchConfig

REPO = Path(__file__).resolve().parents[2]
TOY = {"train_fn": "tests.hpo.toy_trainer:toy_train",
       "train_config": "tests.hpo.toy_trainer:ToyConfig"}


def worker_env() -> dict[str, str]:
    """Environment in which Ray workers (and `hpc-seg` subprocesses) can import ``tests.*``."""
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{path}" if path else str(REPO),
            "RAY_AUTH_MODE": "disabled", "HPC_SEG_PLAIN_LOGS": "1"}


def toy_search(slices_dir: Path, **changes) -> SearchConfig:
    """A 4-trial toy search: lr space, 3 epochs, ASHA grace 1 / factor 2, no dashboard."""
    table = {**TOY, "num_samples": 4, "max_concurrent": 1, "study_name": "toy",
             "train": {"epochs": 3, "sleep_s": 0.2},
             "space": {"lr": {"low": 3e-4, "high": 3e-3, "log": True}},
             "asha": {"grace_period": 1, "reduction_factor": 2},
             "data": {"slices_dir": str(slices_dir)}, "dashboard": False}
    table.update(changes)
    return from_dict(SearchConfig, table, "test")


@pytest.fixture(scope="module")
def ray_session():
    """A private local Ray (2 CPUs, no dashboard) for the whole module; removed afterwards."""
    import ray

    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = worker_env()["PYTHONPATH"]
    ray.init(num_cpus=2, include_dashboard=False)
    session_dir = ray._private.worker._global_node.get_session_dir_path()
    yield
    ray.shutdown()
    shutil.rmtree(session_dir, ignore_errors=True)  # only this session's folder in /tmp/ray
    if old is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = old
