"""``hpc-seg hadnet ...``: HAD-Net stages: preprocess, pretrain, distill, predict, evaluate."""

GROUP = "hadnet"
GROUP_HELP = "HAD-Net stages: preprocess, pretrain, distill, predict, evaluate"
