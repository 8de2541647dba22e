"""Garbage-collector settings around a chunk of curation work are the caller's again afterwards."""

from __future__ import annotations

import gc
import weakref

from hpc_seg.runtime.worker_memory import WORKER_GC_THRESHOLDS, relaxed_gc


class _Node:
    pass


def test_relaxed_gc_restores_the_callers_settings_and_cycles_are_still_freed():
    before = gc.get_threshold()
    assert gc.get_freeze_count() == 0
    with relaxed_gc():
        assert gc.get_threshold() == WORKER_GC_THRESHOLDS
        assert gc.get_freeze_count() > 0          # what existed before is out of collections
        a, b = _Node(), _Node()
        a.other, b.other = b, a                   # a cycle made inside the block
        alive = weakref.ref(a)
        del a, b
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
    gc.collect()
    assert alive() is None


def test_relaxed_gc_leaves_a_callers_own_freeze_in_place():
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with relaxed_gc():
            pass
        assert gc.get_freeze_count() >= frozen > 0
    finally:
        gc.unfreeze()


def test_relaxed_gc_restores_settings_after_an_error():
    before = gc.get_threshold()
    try:
        with relaxed_gc():
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        pass
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
