"""The Ray-cluster sbatch script: config checks and the parts that need no SLURM to check."""

from __future__ import annotations

import re
import subprocess

import pytest

from hpc_seg.errors import ConfigError
from hpc_seg.launch.ray_script import RayClusterConfig, render_ray_script


def _ports(text: str, job_id: int) -> list[int]:
    """Every port the script gives Ray for ``job_id``: its port section run by bash."""
    section = text[text.index("base=$(("):text.index("start_opts=")]
    out = subprocess.run(["bash", "-c", f"job={job_id}\n{section}\n"
                          'echo "$gcs_port $dashboard_port $((base + 8)) ${ports[*]}"'],
                         capture_output=True, text=True, check=True).stdout
    nums = [int(n) for n in re.findall(r"\d+", out)]
    lo, hi = nums[-2], nums[-1]   # --min-worker-port, --max-worker-port
    return sorted(set(nums[:-2]) | set(range(lo, hi + 1)))


def test_jobs_get_disjoint_port_sets_below_the_ephemeral_range():
    text = render_ray_script(RayClusterConfig(command="true"))
    a, b = _ports(text, 1041), _ports(text, 1042)
    assert max(a) - min(a) < 200 and len(a) >= 190 and not set(a) & set(b)
    assert min(a + b) >= 20000 and max(a + b) < 32768
    assert _ports(text, 1041 + 60) == a   # the block repeats only after port_slots jobs


def test_every_step_names_its_cpus_and_gpus_and_nothing_kills_by_name():
    text = render_ray_script(RayClusterConfig(command="true", gpus_per_node=2))
    assert 'step=(--nodes=1 --ntasks=1 --cpus-per-task="$cpus" --gpus-per-task=2)' in text
    ray_steps = [line for line in text.splitlines() if line.lstrip().startswith("srun ")]
    assert len(ray_steps) == 2 and all('"${step[@]}"' in line for line in ray_steps)
    assert "--num-gpus=2" in text
    assert "ray stop" not in text.replace("never `ray stop`", "")
    assert "hostname --ip-address" not in text.replace("(`hostname --ip-address`", "")
    assert "--dashboard-host=127.0.0.1" in text and not re.search(r"@[A-Z_]+@", text)


def test_token_is_generated_private_and_only_its_path_is_exported():
    text = render_ray_script(RayClusterConfig(command="true"))
    assert "umask 077" in text and 'RAY_AUTH_TOKEN_PATH="$token_dir/$job.token"' in text
    assert "unset RAY_AUTH_TOKEN" in text
    assert text.index("RAY_AUTH_TOKEN_PATH=") < text.index("start --head")


@pytest.mark.parametrize("change, message", [
    ({"port_block": 20}, "port_block (20) leaves too few worker ports"),
    ({"port_base": 60000}, "must lie in 1024..65535"),
    ({"tmp_root": "/very/long/local/scratch"}, "at most 12 characters"),
    ({"tmp_root": "tmp"}, "must be an absolute path"),
    ({"nodes": 0}, "nodes must be an integer >= 1, but got 0"),
    ({"object_store_gb": 0.0}, "object_store_gb must be > 0"),
    ({"command": "  "}, "command must not be empty"),
])
def test_bad_settings_are_one_line_errors(change, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        RayClusterConfig(**{"command": "true", **change})


def test_job_file_table_with_overrides_and_unknown_keys(tmp_path):
    from hpc_seg.cli import build_parser
    from hpc_seg.config_flags import config_from_options

    job = tmp_path / "job.toml"
    job.write_text('[ray_cluster]\nnodes = 3\npartition = "cpu"\n')
    args = build_parser().parse_args(["cluster", "submit", "--job", str(job),
                                      "--cpus-per-node", "4", "--", "hpc-seg", "tune", "j"])
    cfg = config_from_options(RayClusterConfig, args, table="ray_cluster",
                              fixed={"command": "hpc-seg tune j"})
    assert (cfg.nodes, cfg.partition, cfg.cpus_per_node) == (3, "cpu", 4)
    job.write_text("[ray_cluster]\ngpus = 1\n")
    with pytest.raises(ConfigError, match=r"job.toml: \[ray_cluster\] \+ command line: unknown "
                                          r"key\(s\) \['gpus'\]"):
        config_from_options(RayClusterConfig, args, table="ray_cluster", fixed={"command": "x"})


def test_home_relative_paths_stay_unexpanded_until_the_node():
    text = render_ray_script(RayClusterConfig(command="true", token_dir="~/my tokens"))
    assert "token_dir=\"$HOME\"'/my tokens'" in text
