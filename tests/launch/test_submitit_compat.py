"""Pins the private submitit API that hpc_seg.launch.submitit_compat wraps: an upgrade that changes
it fails here, not in a user's job."""

from __future__ import annotations

import inspect

import submitit
from submitit.core import core
from submitit.core.utils import cloudpickle_dump

from hpc_seg.launch import submitit_compat as compat


def test_the_tested_release_is_installed():
    assert submitit.__version__ == compat.TESTED_VERSION


def test_sbatch_string_renders_the_command_and_resources(tmp_path):
    text = compat.sbatch_string("python -u -m x", tmp_path, job_name="j", nodes=2, ntasks_per_node=4,
                                cpus_per_task=3, time=10)
    assert text.startswith("#!/bin/bash")
    for line in ("#SBATCH --job-name=j", "#SBATCH --nodes=2", "#SBATCH --ntasks-per-node=4",
                 "#SBATCH --cpus-per-task=3", "#SBATCH --time=10"):
        assert line in text
    assert "python -u -m x" in text


def test_job_objects_rebuild_from_an_id(tmp_path):
    slurm_job = compat.job_from_id("slurm", tmp_path, "123")
    local_job = compat.job_from_id("local", tmp_path, "456")
    assert type(slurm_job).__name__ == "SlurmJob" and slurm_job.job_id == "123"
    assert type(local_job).__name__ == "LocalJob" and local_job.job_id == "456"
    assert slurm_job.paths.folder == tmp_path


def test_results_timeout_is_the_attribute_results_reads(tmp_path):
    assert core.Job._results_timeout_s == 15  # the class default the wrapper overrides
    assert "self._results_timeout_s" in inspect.getsource(core.Job)
    job = compat.job_from_id("local", tmp_path, "1")
    compat.set_results_timeout(job, 3)
    assert job._results_timeout_s == 3


def test_submit_module_exists_and_pickles_read_back(tmp_path):
    import importlib.util

    assert importlib.util.find_spec(compat.SUBMIT_MODULE) is not None
    cloudpickle_dump(("success", 42), tmp_path / "r.pkl")
    assert compat.load_pickle(tmp_path / "r.pkl") == ("success", 42)
