"""Thin command-line front ends, one module per sub-command (see :mod:`hpc_seg.cli`)."""
