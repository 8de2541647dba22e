"""Benchmarks behind `hpc-seg bench ...`: each prints figures, none asserts a time."""
