"""``hpc-seg bench ...``: benchmarks that print figures."""

GROUP = "bench"
GROUP_HELP = "benchmarks that print figures"
