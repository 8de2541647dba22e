"""``hpc-seg cluster ...``: a Ray cluster per SLURM job (multi-node ingest and search)."""

GROUP = "cluster"
GROUP_HELP = "a Ray cluster inside one SLURM job: submit a driver command to it"
