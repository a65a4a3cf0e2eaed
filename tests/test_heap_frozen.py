"""``config.db.heap_frozen``: what is alive when a block starts is left out of the garbage
collector's passes until the outermost block ends, and a freeze made by something else (a
gunicorn worker's ``post_worker_init``) is never undone."""

from __future__ import annotations

import gc

import pytest

from config.db import heap_frozen


@pytest.fixture(autouse=True)
def _nothing_frozen_after():
    assert gc.get_freeze_count() == 0
    yield
    gc.unfreeze()  # a failing test must not leave the rest of the suite frozen


def _tracked(obj) -> bool:
    """Whether the collector's generations hold ``obj`` (frozen objects are in none)."""
    return any(o is obj for o in gc.get_objects())


def test_a_block_freezes_what_is_alive_and_the_outermost_end_unfreezes_it():
    before = []
    with heap_frozen():
        during = []
        assert not _tracked(before) and _tracked(during)
        with heap_frozen():  # nested, as in_processes is inside a pipeline step
            assert not _tracked(during)
        assert not _tracked(during)  # the inner end left the outer freeze alone
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0 and _tracked(before) and _tracked(during)


def test_the_objects_go_back_to_the_collector_when_the_block_raises():
    with pytest.raises(RuntimeError), heap_frozen():
        raise RuntimeError("a step failed")
    assert gc.get_freeze_count() == 0


def test_a_freeze_made_before_by_something_else_is_not_undone():
    # an object of that freeze, not the freeze count: a frozen object that dies (a frame of
    # the moment of the freeze) leaves the count, so it may drop by itself
    theirs: list = []
    gc.freeze()  # as gunicorn's post_worker_init does
    with heap_frozen():
        pass
    assert not _tracked(theirs) and gc.get_freeze_count() > 0
