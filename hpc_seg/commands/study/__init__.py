"""``hpc-seg study ...``: inspect Optuna studies."""

GROUP = "study"
GROUP_HELP = "inspect Optuna studies"
