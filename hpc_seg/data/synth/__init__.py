"""Synthetic cohort generators: Kaggle-like cine DICOM, 7T-like cine, BraTS-like NIfTI."""
