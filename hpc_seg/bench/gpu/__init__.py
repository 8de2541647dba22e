"""``hpc-seg bench gpu``: every GPU check in one prepared command, with a CPU dry run.

The checks (training step by precision, packed Tune trials, HAD-Net at the published size, NCCL
against gloo, ingest scaling, and the ``gpu`` pytest marker) run one after another, each in its own
process under its own time limit, and land in ``gpu_checks.json`` plus a short log. ``--dry-run``
runs the same code at toy sizes on CPU, so the script is known to work before GPU time is spent.

- :mod:`.profile`: the sizes and time limits of every check (GPU and dry run);
- :mod:`.report`: one check's result, the JSON document and its schema, the short log;
- :mod:`.runner`: runs checks in child processes (:mod:`.child`) with time limits;
- ``check_*``: the checks themselves, each reusing the benchmark or the code it checks.
"""
