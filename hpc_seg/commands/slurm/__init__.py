"""``hpc-seg slurm ...``: the local real SLURM cluster used for development and tests."""

GROUP = "slurm"
GROUP_HELP = "the local real SLURM cluster used for development and tests"
