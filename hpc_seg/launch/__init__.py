"""Job launching: submitit executors (SLURM or local), arrays, DDP environment, requeue, lineage."""
