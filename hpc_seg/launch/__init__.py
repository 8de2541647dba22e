"""Job launching: submitit executors (SLURM or local), arrays, DDP environment, requeue, lineage.

Import what you need from the submodules; the names below are the public API:

- :class:`~hpc_seg.launch.config.LaunchConfig` (the ``[launch]`` table)
- :func:`~hpc_seg.launch.executor.make_executor`, :func:`~hpc_seg.launch.executor.resolve_executor`
- :func:`~hpc_seg.launch.submit.submit_array`, :func:`~hpc_seg.launch.submit.gather`,
  :func:`~hpc_seg.launch.submit.resubmit_failed`, :func:`~hpc_seg.launch.submit.submit_ddp`,
  :func:`~hpc_seg.launch.submit.wait_job`
- :class:`~hpc_seg.launch.tasks.Resumable`, :func:`~hpc_seg.launch.tasks.record_outputs`
- :func:`~hpc_seg.launch.ddp.init_distributed`, :func:`~hpc_seg.launch.ddp.cleanup_distributed`
- :class:`~hpc_seg.launch.lineage.Lineage`
"""
