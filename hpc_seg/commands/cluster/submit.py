"""``hpc-seg cluster submit [options] -- COMMAND``: a Ray cluster on N SLURM nodes runs COMMAND.

The job starts a Ray head on its first node and a worker on every other node, then runs COMMAND
on the head node with ``RAY_ADDRESS`` set, so ``hpc-seg ingest --engine ray`` and ``hpc-seg tune``
use the whole allocation. Settings come from a job file's ``[ray_cluster]`` table (``--job``),
then from the options here.
"""

from __future__ import annotations

import argparse

from hpc_seg.launch.ray_script import RayClusterConfig
from hpc_seg.config_flags import add_config_options
from hpc_seg.options import BoolOption, add_job_option

NAME = "submit"
HELP = "submit a SLURM job that starts a Ray cluster on its nodes and runs COMMAND against it"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_job_option(parser, "[ray_cluster]")
    add_config_options(parser.add_argument_group("cluster options ([ray_cluster])"),
                       RayClusterConfig, table="ray_cluster", taken={"command": "COMMAND"})
    parser.add_argument("--dry-run", action=BoolOption, default=False,
                        help="print the script, submit nothing")
    parser.add_argument("--wait", action=BoolOption, default=False,
                        help="wait for the job to end; exit 0 only when it COMPLETED")
    parser.add_argument("command", nargs=argparse.REMAINDER, metavar="COMMAND",
                        help="the driver command, after '--' (e.g. -- hpc-seg ingest SRC OUT "
                             "--engine ray)")


def run(args: argparse.Namespace) -> int:
    import shlex
    import sys
    from pathlib import Path

    from hpc_seg.errors import ConfigError
    from hpc_seg.launch.capacity import default_cpus_per_node, default_mem_gb
    from hpc_seg.launch.ray_script import render_ray_script
    from hpc_seg.launch.ray_submit import submit_ray_cluster, wait_for_end
    from hpc_seg.config_flags import config_from_options, given
    from hpc_seg.options import job_table, job_tables

    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        raise ConfigError("cluster submit: no driver command; give it after '--', e.g. "
                          "hpc-seg cluster submit -- hpc-seg ingest SRC OUT --engine ray")
    table = job_table(job_tables(args), "ray_cluster", str(args.job))
    # The nodes run this installation unless told otherwise: its ray, and its bin/ on PATH so
    # that the driver's `hpc-seg` is this one.
    bin_dir = Path(sys.executable).parent
    defaults = {}
    if "setup" not in table and not given(args, "ray_cluster", "setup"):
        defaults["setup"] = [f"export PATH={shlex.quote(str(bin_dir))}:\"$PATH\""]
    if "ray" not in table and (bin_dir / "ray").exists():
        defaults["ray"] = str(bin_dir / "ray")
    # Per-node sizes the cluster decides: a fixed default (8 CPUs, 32 GB) asks more than small
    # nodes have, and such a job waits for ever.
    partition = getattr(args, "ray_cluster:partition", None) or table.get("partition")
    partition = partition if isinstance(partition, str) else None
    if "cpus_per_node" not in table and not given(args, "ray_cluster", "cpus_per_node"):
        defaults["cpus_per_node"] = default_cpus_per_node(partition)
    if "mem_gb" not in table and not given(args, "ray_cluster", "mem_gb"):
        defaults["mem_gb"] = default_mem_gb(partition)
    cfg = config_from_options(RayClusterConfig, args, table="ray_cluster",
                              tables={"ray_cluster": table}, preset=defaults,
                              fixed={"command": shlex.join(command)})
    if args.dry_run:
        print(render_ray_script(cfg), end="")
        return 0
    job = submit_ray_cluster(cfg)
    print(f"submitted job {job.job_id}: {cfg.nodes} node(s) x {cfg.cpus_per_node} CPUs")
    print(f"  script {job.script}")
    print(f"  log    {job.log}")
    if not args.wait:
        return 0
    info = wait_for_end(job.job_id)
    print(f"job {job.job_id} {info.raw_state} (exit {info.exit_code}) on {info.node}")
    return 0 if info.state == "COMPLETED" else 1
