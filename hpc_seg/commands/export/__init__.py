"""``hpc-seg export ...``: export stacks to other formats."""

GROUP = "export"
GROUP_HELP = "export stacks to other formats"
