"""Segmentation metrics shared by both studies: thin wrappers over MONAI's metrics.

- :mod:`.overlap`: Dice (MONAI ``DiceMetric``, both-empty = 1), the paper's smoothed validation
  Dice, and sensitivity / specificity from MONAI's confusion matrix;
- :mod:`.distance`: the 95th-percentile Hausdorff distance in mm (MONAI
  ``HausdorffDistanceMetric``) with BraTS's conventions for empty masks;
- :mod:`.qu_score`: the BraTS 2019 uncertainty score (QU) and its three AUCs (not in MONAI).

MONAI is imported inside the functions: importing it costs seconds, and the CLI and the training
loops import these modules whether or not they compute a metric.
"""
