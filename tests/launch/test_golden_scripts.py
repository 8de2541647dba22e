"""Generated sbatch scripts against checked-in golden files.

Regenerate after an intended change with ``HPC_SEG_UPDATE_GOLDEN=1 pytest tests/launch -k golden``
and review the diff.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from hpc_seg.launch.config import LaunchConfig
from hpc_seg.launch.executor import sbatch_text
from hpc_seg.launch.ray_script import RayClusterConfig, render_ray_script

GOLDEN = Path(__file__).parent / "golden"
FOLDER = "/scratch/runs/demo/submitit"

CASES = {
    "array-gpu.sbatch": lambda: sbatch_text(
        LaunchConfig(executor="slurm", partition="gpu", account="imaging", qos="normal", time_min=120,
                     cpus_per_task=8, gpus_per_node=1, mem_gb=32, array_parallelism=4,
                     extra={"constraint": "a100"}),
        FOLDER, array_size=12),
    "ddp-2x4.sbatch": lambda: sbatch_text(
        LaunchConfig(executor="slurm", partition="gpu", nodes=2, tasks_per_node=4, cpus_per_task=6,
                     gpus_per_node=4, mem_gb=200, time_min=1440, signal_delay_s=120), FOLDER),
    "cpu-default.sbatch": lambda: sbatch_text(LaunchConfig(mem_gb=1.5), FOLDER),
    "ray-cluster.sbatch": lambda: render_ray_script(RayClusterConfig(
        command="hpc-seg ingest data/raw runs/ingest --engine ray", nodes=4, cpus_per_node=32,
        gpus_per_node=0, mem_gb=120, partition="cpu", account="imaging",
        setup=["module load python/3.11", "source .venv/bin/activate"], ray=".venv/bin/ray")),
    "ray-cluster-gpu.sbatch": lambda: render_ray_script(RayClusterConfig(
        command="hpc-seg tune jobs/cardiac_search.toml --out /shared/runs/search", nodes=2,
        cpus_per_node=16, gpus_per_node=4, mem_gb=200, partition="gpu", exclusive=False,
        dashboard=False, object_store_gb=8, token_dir="/shared/tokens", tmp_root="/local",
        ray="/shared/venv/bin/ray")),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_generated_script_matches_golden(name):
    text = CASES[name]()
    path = GOLDEN / name
    if os.environ.get("HPC_SEG_UPDATE_GOLDEN") == "1":
        path.write_text(text)
    assert path.exists(), f"{path} missing: run with HPC_SEG_UPDATE_GOLDEN=1 to create it"
    assert text == path.read_text(), f"{name} differs from {path}; regenerate if intended"


@pytest.mark.parametrize("name", sorted(CASES))
def test_generated_script_is_valid_bash(name, tmp_path):
    script = tmp_path / name
    script.write_text(CASES[name]())
    subprocess.run(["bash", "-n", str(script)], check=True)


def test_array_script_has_throttle_and_resources():
    text = CASES["array-gpu.sbatch"]()
    for line in ("#SBATCH --array=0-11%4", "#SBATCH --gpus-per-node=1", "#SBATCH --partition=gpu",
                 "#SBATCH --account=imaging", "#SBATCH --qos=normal", "#SBATCH --time=120",
                 "#SBATCH --mem=32GB", "#SBATCH --constraint=a100", "#SBATCH --signal=USR2@90"):
        assert line in text.splitlines()


def _sbatch(text: str) -> dict[str, str]:
    """The ``#SBATCH --key=value`` directives of a script (``--exclusive`` -> "")."""
    out = {}
    for line in text.splitlines():
        if line.startswith("#SBATCH --"):
            key, _, value = line[len("#SBATCH --"):].partition("=")
            out[key] = value
    return out


# The golden files are written by the code under test; these expectations are worked out by hand
# from each case's config, so a wrong golden file cannot pass unnoticed.

def test_ddp_script_asks_for_every_rank():
    d = _sbatch(CASES["ddp-2x4.sbatch"]())
    assert {k: d[k] for k in ("nodes", "ntasks-per-node", "cpus-per-task", "gpus-per-node",
                              "mem", "time", "partition", "signal")} == {
        "nodes": "2", "ntasks-per-node": "4", "cpus-per-task": "6", "gpus-per-node": "4",
        "mem": "200GB", "time": "1440", "partition": "gpu", "signal": "USR2@120"}
    assert "array" not in d and "srun --unbuffered" in CASES["ddp-2x4.sbatch"]()


def test_default_cpu_script_is_one_small_task():
    d = _sbatch(CASES["cpu-default.sbatch"]())
    assert (d["nodes"], d["ntasks-per-node"], d["cpus-per-task"]) == ("1", "1", "1")
    assert d["mem"] == "1536MB" and d["time"] == "60" and d["signal"] == "USR2@90"
    assert not {"gpus-per-node", "partition", "account", "qos", "array"} & set(d)


def test_gpu_ray_cluster_script_shares_nothing_it_should_not():
    text = CASES["ray-cluster-gpu.sbatch"]()
    d = _sbatch(text)
    assert (d["nodes"], d["cpus-per-task"], d["gpus-per-node"], d["mem"]) == ("2", "16", "4", "200G")
    assert "exclusive" not in d                                  # exclusive = false
    assert "--include-dashboard=false" in text                   # dashboard = false
    assert f"--object-store-memory={8 * 1024 ** 3}" in text       # object_store_gb = 8
    assert "token_dir=/shared/tokens" in text and "--gpus-per-task=4" in text


def test_ray_dashboard_binds_localhost_by_default():
    text = render_ray_script(RayClusterConfig(command="true"))
    assert "--dashboard-host=127.0.0.1" in text
    assert not re.search(r"@[A-Z_]+@", text)  # every placeholder filled


@pytest.mark.slurm
@pytest.mark.parametrize("name, override", [
    ("array.sbatch", ["--mem=1G", "--cpus-per-task=1"]),
    ("ddp.sbatch", ["-N1", "--ntasks-per-node=2", "--cpus-per-task=1", "--gpus-per-node=0", "--mem=1G"]),
])
def test_user_sbatch_templates_are_accepted_by_slurm(name, override, slurm_cluster):
    """The hand-submitted templates parse as bash and SLURM accepts their directives (--test-only)."""
    script = Path(__file__).resolve().parents[2] / "slurm" / "sbatch" / name
    subprocess.run(["bash", "-n", str(script)], check=True)
    out = subprocess.run(["sbatch", "--test-only", *override, str(script)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0 and "to start at" in out.stderr, out.stderr
