"""Prediction on new scans with a trained cardiac model (``hpc-seg predict``).

:func:`~hpc_seg.cardiac.inference.run.predict` is the API; the modules are: ``model_file``
(what a model file must carry), ``sources`` (DICOM / NIfTI / volumes input), ``measures``
(volumes, EF, mass, QC), ``dicom_seg`` (highdicom SEG), ``overlay`` (PNG).
"""
