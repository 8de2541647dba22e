"""``hpc-seg cluster submit [options] -- COMMAND``: a Ray cluster on N SLURM nodes runs COMMAND.

The job starts a Ray head on its first node and a worker on every other node, then runs COMMAND
on the head node with ``RAY_ADDRESS`` set, so ``hpc-seg ingest --engine ray`` and ``hpc-seg tune``
use the whole allocation. Settings come from a job file's ``[ray_cluster]`` table (``--job``),
then from the options here.
"""

from __future__ import annotations

import argparse

NAME = "submit"
HELP = "submit a SLURM job that starts a Ray cluster on its nodes and runs COMMAND against it"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--job", default=None,
                        help="job file whose [ray_cluster] table gives the settings")
    parser.add_argument("--nodes", type=int, default=None, help="SLURM nodes (default 2)")
    parser.add_argument("--cpus-per-node", type=int, default=None,
                        help="CPUs per node (default: the CPUs of the partition's smallest node, "
                             "read from the cluster; 8 without one)")
    parser.add_argument("--gpus-per-node", type=int, default=None, help="GPUs per node (default 0)")
    parser.add_argument("--mem-gb", type=int, default=None,
                        help="memory per node, GB (default: the memory of the partition's smallest "
                             "node, read from the cluster; 32 without one)")
    parser.add_argument("--time-min", type=int, default=None, help="time limit, minutes (default 120)")
    parser.add_argument("--partition", default=None)
    parser.add_argument("--account", default=None)
    parser.add_argument("--qos", default=None)
    parser.add_argument("--job-name", default=None, help="SLURM job name (default hpc-seg-ray)")
    parser.add_argument("--log-dir", default=None,
                        help="job log and the rendered script go here (default logs/)")
    parser.add_argument("--exclusive", action=argparse.BooleanOptionalAction, default=None,
                        help="whole nodes (default yes: Ray does not confine itself to its CPUs)")
    parser.add_argument("--dashboard", action=argparse.BooleanOptionalAction, default=None,
                        help="start Ray's dashboard on the head node's 127.0.0.1 (default yes)")
    parser.add_argument("--object-store-gb", type=float, default=None,
                        help="object store per node (default: Ray's, 30%% of the node's memory)")
    parser.add_argument("--start-timeout-s", type=int, default=None,
                        help="fail the job when Ray is not up on every node by then (default 120)")
    parser.add_argument("--start-attempts", type=int, default=None,
                        help="tries of `ray start` per node before the job fails (default 2)")
    parser.add_argument("--ray", default=None,
                        help="the ray executable on the nodes (default: the one next to this Python)")
    parser.add_argument("--setup", action="append", default=None,
                        help="a shell line run before Ray starts (repeatable), e.g. "
                             "'source .venv/bin/activate'")
    parser.add_argument("--dry-run", action="store_true", help="print the script, submit nothing")
    parser.add_argument("--wait", action="store_true",
                        help="wait for the job to end; exit 0 only when it COMPLETED")
    parser.add_argument("command", nargs=argparse.REMAINDER,
                        help="the driver command, after '--' (e.g. -- hpc-seg ingest SRC OUT "
                             "--engine ray)")


def run(args: argparse.Namespace) -> int:
    import shlex
    import sys
    from pathlib import Path

    from hpc_seg.config import load_toml
    from hpc_seg.errors import ConfigError
    from hpc_seg.launch.capacity import default_cpus_per_node, default_mem_gb
    from hpc_seg.launch.ray_script import ray_cluster_config, render_ray_script
    from hpc_seg.launch.ray_submit import submit_ray_cluster, wait_for_end

    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        raise ConfigError("cluster submit: no driver command; give it after '--', e.g. "
                          "hpc-seg cluster submit -- hpc-seg ingest SRC OUT --engine ray")
    table, where = {}, "[ray_cluster]"
    if args.job:
        table = dict(load_toml(args.job).get("ray_cluster", {}))
        where = f"{args.job}: [ray_cluster]"
    # The nodes run this installation unless told otherwise: its ray, and its bin/ on PATH so
    # that the driver's `hpc-seg` is this one.
    bin_dir = Path(sys.executable).parent
    default_ray = str(bin_dir / "ray") if (bin_dir / "ray").exists() else "ray"
    setup = args.setup
    if setup is None and "setup" not in table:
        setup = [f"export PATH={shlex.quote(str(bin_dir))}:\"$PATH\""]
    # Per-node sizes the cluster decides: a fixed default (8 CPUs, 32 GB) asks more than small
    # nodes have, and such a job waits for ever.
    partition = args.partition or table.get("partition")
    cpus = args.cpus_per_node if args.cpus_per_node is not None or "cpus_per_node" in table \
        else default_cpus_per_node(partition if isinstance(partition, str) else None)
    mem = args.mem_gb if args.mem_gb is not None or "mem_gb" in table \
        else default_mem_gb(partition if isinstance(partition, str) else None)
    cfg = ray_cluster_config(
        table, shlex.join(command), where,
        nodes=args.nodes, cpus_per_node=cpus, gpus_per_node=args.gpus_per_node,
        mem_gb=mem, time_min=args.time_min, partition=args.partition,
        account=args.account, qos=args.qos, job_name=args.job_name, log_dir=args.log_dir,
        exclusive=args.exclusive, dashboard=args.dashboard, object_store_gb=args.object_store_gb,
        start_timeout_s=args.start_timeout_s, start_attempts=args.start_attempts, setup=setup,
        ray=args.ray or (None if "ray" in table else default_ray))
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
