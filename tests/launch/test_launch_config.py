"""LaunchConfig validation, TOML loading, and sacct parsing (no cluster needed)."""

from __future__ import annotations

import pytest

from hpc_seg.config import from_dict, load_toml
from hpc_seg.errors import ConfigError
from hpc_seg.launch.config import LaunchConfig
from hpc_seg.launch.executor import slurm_parameters
from hpc_seg.launch.status import parse_sacct


def test_launch_table_from_toml(tmp_path):
    path = tmp_path / "job.toml"
    path.write_text('[launch]\nexecutor = "slurm"\npartition = "gpu"\nqos = "high"\ntime_min = 30\n'
                    'gpus_per_node = 2\nmem_gb = 16\narray_parallelism = 3\n'
                    '[launch.extra]\nconstraint = "a100"\n')
    cfg = from_dict(LaunchConfig, load_toml(path)["launch"], f"{path}: [launch]")
    assert (cfg.executor, cfg.partition, cfg.qos, cfg.time_min, cfg.gpus_per_node) == \
        ("slurm", "gpu", "high", 30, 2)
    params = slurm_parameters(cfg)
    assert params["slurm_partition"] == "gpu" and params["slurm_qos"] == "high"
    assert params["slurm_gpus_per_node"] == 2 and params["slurm_mem"] == "16GB"
    assert params["slurm_array_parallelism"] == 3
    assert params["slurm_additional_parameters"] == {"constraint": "a100"}
    assert "slurm_account" not in params


def test_unknown_key_lists_valid_ones():
    with pytest.raises(ConfigError, match=r"job.toml: \[launch\]: unknown key\(s\) \['gpus'\]; valid keys"):
        from_dict(LaunchConfig, {"gpus": 1}, "job.toml: [launch]")


@pytest.mark.parametrize("bad, match", [
    ({"executor": "pbs"}, "must be one of"),
    ({"nodes": 0}, "nodes must be an integer >= 1"),
    ({"mem_gb": 0}, "mem_gb must be > 0"),
    ({"time_min": 1, "signal_delay_s": 90}, r"signal_delay_s \(90\) must be shorter"),
    ({"executor": "local", "nodes": 2}, "executor local runs on this machine only"),
    ({"extra": {"Bad Key": "x"}}, "is not an sbatch option name"),
    ({"array_parallelism": 0}, "array_parallelism must be an integer >= 1"),
])
def test_bad_values_fail_clearly(bad, match):
    with pytest.raises(ConfigError, match=match):
        from_dict(LaunchConfig, bad, "job.toml: [launch]")


def test_parse_sacct_expands_pending_array_ranges_and_strips_state_detail():
    text = ("12_0|COMPLETED|vm|0:0|2026-11-23T12:00:00|2026-11-23T12:00:01|None\n"
            "12_[2-4%2]|PENDING|None assigned|0:0|Unknown|Unknown|JobArrayTaskLimit\n"
            "13|CANCELLED by 0|vm|0:15|2026-11-23T12:00:00|2026-11-23T12:00:05|None\n"
            "13.batch|CANCELLED|vm|0:15|x|y|z\n")
    info = parse_sacct(text)
    assert sorted(info) == ["12_0", "12_2", "12_3", "12_4", "13"]
    assert info["12_3"].state == "PENDING" and not info["12_3"].terminal
    assert info["13"].state == "CANCELLED" and info["13"].raw_state == "CANCELLED by 0"
    assert info["13"].terminal and info["12_0"].terminal


def test_resubmit_of_a_job_pickled_by_old_module_paths_is_one_clear_error(tmp_path):
    """A submitit pickle naming a module that moved (runs made before the study-folder layout)."""
    import pickle
    import sys
    import types

    import pytest

    from hpc_seg.errors import LaunchError
    from hpc_seg.launch.submit import ArrayRun, TaskOutcome, resubmit_failed

    pkl = tmp_path / "1_submitted.pkl"
    # Pickle a function of a module that then disappears, as hpc_seg.data.ingest did.
    old = types.ModuleType("hpc_seg_old_layout_ingest")
    exec("def ingest():\n    pass\n", old.__dict__)
    sys.modules[old.__name__] = old
    try:
        pkl.write_bytes(pickle.dumps(old.ingest))
    finally:
        del sys.modules[old.__name__]

    class OldJob:
        job_id = "1"
        paths = types.SimpleNamespace(submitted_pickle=pkl)

        def submission(self):
            return pickle.loads(pkl.read_bytes())

    run = ArrayRun(tmp_path, "old", [OldJob()], [1])
    with pytest.raises(LaunchError, match=r"1_submitted.pkl: task 0 was pickled by an older "
                                          r"hpc-seg whose code has moved \(No module named"):
        resubmit_failed(run, [TaskOutcome(0, "1", "FAILED", False)])


def test_wait_job_failure_is_one_line_naming_the_cause_and_the_log(monkeypatch, tmp_path):
    """A failed job's traceback stays in its log; the error is its last line and where to look."""
    from types import SimpleNamespace

    from hpc_seg.errors import LaunchError
    from hpc_seg.launch import submit

    traceback = ("Traceback (most recent call last):\n  File \"x.py\", line 3, in f\n"
                 "    raise ValueError('bad pad size')\nValueError: bad pad size\n")
    job = SimpleNamespace(job_id="42", num_tasks=1, paths=SimpleNamespace(stderr="42.err"))
    monkeypatch.setattr(submit, "_wait", lambda jobs, timeout: None)
    monkeypatch.setattr(submit, "outcome", lambda i, j: submit.TaskOutcome(
        0, "42", "FAILED", False, error=traceback))
    with pytest.raises(LaunchError) as exc:
        submit.wait_job(job)
    assert str(exc.value) == ("job 42 ended FAILED without a result: ValueError: bad pad size; "
                              "the whole log: the job's stderr (42.err)")
