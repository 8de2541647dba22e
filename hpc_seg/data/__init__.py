"""Data stages: DICOM reading and curation, shard I/O, NIfTI export, BraTS reading, generators."""
