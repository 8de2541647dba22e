"""A static HTML report over any run folder (``hpc-seg report RUN``); see :mod:`.page`.

Imports only ground, launch and hpo: it reads the files stages leave, never the study code.
"""
