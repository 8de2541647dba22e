"""``hpc-seg synth ...``: generate synthetic cohorts (cine DICOM, BraTS-like NIfTI)."""

GROUP = "synth"
GROUP_HELP = "generate synthetic cohorts (cine DICOM, BraTS-like NIfTI)"
