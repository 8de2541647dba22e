"""``hpc-seg transfer ...``: the cardiac transfer-learning study (7T volunteers, subsets, R/TL/TL2)."""

GROUP = "transfer"
GROUP_HELP = "transfer the cardiac base model to a new domain (7T): synth, run, evaluate"
