"""The stages a job definition can chain (``[job] stages = [...]``), by name.

This is the one module that knows both studies: each study keeps its stage functions in its own
``stages`` module and what its results mean in its ``findings`` module, and the registry joins
them. The report reads run folders through :data:`FINDINGS` without importing a study.
"""

from __future__ import annotations

from hpc_seg.cardiac.findings import cardiac_findings
from hpc_seg.cardiac.stages import CARDIAC_STAGES, CARDIAC_TABLES
from hpc_seg.cardiac.transfer.findings import transfer_findings
from hpc_seg.hadnet.findings import hadnet_findings
from hpc_seg.hadnet.stages import COHORT_STAGES, HADNET_STAGES, HADNET_TABLES
from hpc_seg.report.findings import FindingsFn
from hpc_seg.stage import StageFn

STAGES: dict[str, StageFn] = {**CARDIAC_STAGES, **COHORT_STAGES, **HADNET_STAGES}

#: every table a job file may hold: ``[job]``, one per stage, and those stages share
TABLES: frozenset[str] = frozenset({"job", *STAGES, *CARDIAC_TABLES, *HADNET_TABLES})

#: what each study finds in a run folder, in the order the report shows them
FINDINGS: tuple[FindingsFn, ...] = (cardiac_findings, transfer_findings, hadnet_findings)
