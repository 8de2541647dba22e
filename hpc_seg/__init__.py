"""hpc-seg: an HPC batch system for medical image segmentation studies.

Stages (ingest, labels, tune, transfer, hadnet, evaluate) live in their own sub-packages; the
``hpc-seg`` command line is assembled from ``hpc_seg.commands``.
"""

__version__ = "0.1.0"
