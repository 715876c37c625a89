"""The cycle collector runs between the loop's passes, never in the middle of one."""

from __future__ import annotations

import gc
import weakref

from gitopsguard.collector import Collector


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cycle collector frees it


def _orphaned_cycle() -> weakref.ref[Node]:
    return weakref.ref(Node())


def test_a_cycle_dropped_during_a_pass_is_freed_between_passes_not_during_it() -> None:
    collector = Collector()
    assert gc.isenabled()
    with collector.passes():
        cycle = _orphaned_cycle()
        _ = [[i] for i in range(100_000)]  # plenty of allocations: would trigger automatic collections
        assert cycle() is not None, "nothing collects while a pass runs"
        collector.between_passes()
        assert cycle() is None
    assert gc.isenabled(), "automatic collection is back after the loop"


def test_the_whole_heap_is_collected_when_due_and_quiet_or_long_overdue() -> None:
    now = [0.0]
    collector = Collector(full_every=60, clock=lambda: now[0])
    assert collector.between_passes() == 1, "young generations only, right after starting"
    now[0] = 61
    assert collector.between_passes(busy=True) == 1, "a pass is waiting: the full collection can wait too"
    assert collector.between_passes() == 2
    assert collector.between_passes() == 1, "and not again until the next period"
    now[0] = 61 + 60 * 5
    assert collector.between_passes(busy=True) == 2, "unless the loop has been busy for five periods"


def test_leaving_passes_keeps_collection_off_when_it_was_off_before() -> None:
    gc.disable()
    try:
        with Collector().passes():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_loop_at_rest_collects_the_whole_heap_only_when_long_overdue() -> None:
    """Passes that changed nothing leave nothing long-lived behind: a full walk of a big heap (0.16 s at 1,000
    Units) once a period would be most of an idle loop's CPU."""
    now = [0.0]
    collector = Collector(full_every=60.0, clock=lambda: now[0])
    now[0] = 61.0
    assert collector.between_passes(at_rest=True) == 1, "at rest: the full collection waits"
    now[0] = 301.0
    assert collector.between_passes(at_rest=True) == 2, "but not for more than five periods"
    now[0] = 362.0
    assert collector.between_passes(at_rest=False) == 2, "a pass changed something: due at its period again"
