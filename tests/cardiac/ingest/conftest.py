"""Fixtures shared by the ingest tests (layouts, encodings, series selection)."""

from __future__ import annotations

import pytest

from tests.cardiac.ingest.variant_cohort import ingest_tables, make_original, stacks


@pytest.fixture(scope="session")
def original(tmp_path_factory):
    """(root, stacks) of the tiny generated cohort every variant is compared with."""
    root = make_original(tmp_path_factory.mktemp("orig") / "src")
    t = ingest_tables(root, tmp_path_factory.mktemp("orig_out") / "out")
    assert len(t["volumes"]) == 2
    return root, stacks(t["volumes"])
