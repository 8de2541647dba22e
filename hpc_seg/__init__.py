"""hpc-seg: an HPC batch system for medical image segmentation studies.

Each study has its own folder (``hpc_seg.cardiac``, ``hpc_seg.hadnet``) over a shared core (errors,
config, storage, runtime, launch, hpo); ``hpc_seg.pipeline`` chains their stages into jobs, and the
``hpc-seg`` command line is assembled from ``hpc_seg.commands``. README "Where things live" has the map.
"""

__version__ = "0.1.0"
