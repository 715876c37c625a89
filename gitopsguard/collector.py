"""Python's cyclic garbage collector, run between reconcile passes instead of in the middle of them.

A pass over a new commit allocates tens of thousands of containers that outlive it (the commit's render,
the prepared bodies, the live cache's objects). CPython counts them towards a full collection, and every
few passes it walked the whole heap in the middle of one: 0.22 s of a 0.6-0.8 s pass over 2,020 objects
(bench/apply_2000.py on the dev cluster). Kubernetes bodies are trees without reference cycles, so
reference counting frees them as soon as they are dropped; the cycle collector only has the rare cycle
(an exception's traceback, say) to find, and between passes is soon enough for that.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

FULL_EVERY = 60.0  # seconds between full collections (each walks the whole heap: 0.1-0.3 s)
OVERDUE = 5  # a full collection waits for a quiet moment, but no longer than this many periods


class Collector:
    """Automatic collection off while passes run; ``between_passes`` collects the young generations each
    time and the whole heap now and then."""

    def __init__(self, full_every: float = FULL_EVERY, clock: Callable[[], float] = time.monotonic) -> None:
        self._full_every, self._clock = full_every, clock
        self._last_full = clock()

    @contextmanager
    def passes(self) -> Iterator[None]:
        """Within: no automatic collection anywhere in the process (collect with ``between_passes``)."""
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            yield
        finally:
            if was_enabled:
                gc.enable()

    def between_passes(self, *, busy: bool = False, at_rest: bool = False) -> int:
        """Collect what the last pass left in cycles; the whole heap too when due and no pass is waiting
        (``busy``), or when long overdue. A loop ``at_rest`` (its passes changed nothing since the last full
        collection) waits as long as a busy one: what it holds stays, and the young collections find what its
        passes dropped. Returns the oldest generation collected."""
        if self._clock() - self._last_full >= self._full_every * (OVERDUE if busy or at_rest else 1):
            self._last_full = self._clock()
            gc.collect()
            return 2
        gc.collect(1)
        return 1
