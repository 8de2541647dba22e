"""``hpc-seg jobs ...``: inspect and manage submitted jobs (lineage records)."""

GROUP = "jobs"
GROUP_HELP = "inspect and manage submitted jobs (lineage records)"
