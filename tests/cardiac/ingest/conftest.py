"""Fixtures shared by the ingest tests: the tiny cohort every variant is compared with, and the
folder of real scanner DICOM."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.cardiac.ingest.variant_cohort import ingest_tables, make_original, stacks


@pytest.fixture(scope="session")
def original(tmp_path_factory):
    """(root, stacks) of the tiny generated cohort every variant is compared with."""
    root = make_original(tmp_path_factory.mktemp("orig") / "src")
    t = ingest_tables(root, tmp_path_factory.mktemp("orig_out") / "out")
    assert len(t["volumes"]) == 2
    return root, stacks(t["volumes"])


#: where the real scanner files live: HPC_SEG_REALDICOM, else ``shared/realdicom`` next to the
#: clone or a folder above it (CI: ../shared/realdicom beside the clone)
REALDICOM_ENV = "HPC_SEG_REALDICOM"


def realdicom_candidates() -> list[Path]:
    repo = Path(__file__).resolve().parents[3]
    if os.environ.get(REALDICOM_ENV):
        return [Path(os.environ[REALDICOM_ENV])]
    return [parent / "shared" / "realdicom" for parent in repo.parents]


@pytest.fixture(scope="session")
def realdicom() -> Path:
    """The real scanner DICOM folder; the test is skipped, saying where it looked, without it."""
    found = next((p for p in realdicom_candidates() if (p / "PROVENANCE.md").is_file()), None)
    if found is None:
        pytest.skip("real scanner DICOM (shared/realdicom) not found: looked in "
                    + ", ".join(str(p) for p in realdicom_candidates())
                    + f"; set {REALDICOM_ENV}=<folder> to run these tests")
    return found
