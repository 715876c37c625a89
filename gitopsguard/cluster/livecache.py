"""What a unit owns, kept current in memory: per kind, one informer (``informer.py``) filtered by the unit's label.

The continuous loop reads a pass's live objects from here instead of listing every kind again, so a pass
over an unchanged commit lists nothing, and one that follows an edit reads only what the watch brought.
Readers get a copy; the informer threads keep going until ``stop`` is set. A kind whose watch failed
(the API server restarted, the kind went away) is not served until its watch answers again or it has been
listed again: meanwhile the pass lists it itself.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from gitopsguard.cluster.apply import Applier
from gitopsguard.cluster.informer import Informer, Kind
from gitopsguard.cluster.rest import RawApi
from gitopsguard.model import UNIT_LABEL, KubeObject, ObjectKey


class LiveCache:
    def __init__(self, applier: Applier, raw: RawApi, unit: str, on_change: Callable[[], None]) -> None:
        self._applier, self._raw, self._on_change = applier, raw, on_change
        self._selector = f"{UNIT_LABEL}={unit}"
        self._informers: dict[Kind, Informer] = {}
        self._synced: set[Kind] = set()
        self._lock = threading.Lock()

    def track(self, kind: Kind, stop: threading.Event) -> None:
        """Keep this kind current from now on (once per kind)."""
        with self._lock:
            if kind in self._informers:
                return
            informer = Informer(
                self._applier, self._raw, kind, selector=self._selector, what="owned",
                on_event=lambda _change, _body: self._on_change(), on_sync=lambda synced: self._sync(kind, synced),
            )  # fmt: skip
            self._informers[kind] = informer
        informer.start(stop)

    def objects(self, kind: Kind) -> dict[ObjectKey, KubeObject] | None:
        """A copy of the owned objects of this kind, or None while the kind is not (or no longer) in sync."""
        with self._lock:
            informer = self._informers.get(kind) if kind in self._synced else None
        return informer.objects() if informer is not None else None

    def _sync(self, kind: Kind, synced: bool) -> None:
        with self._lock:
            was = kind in self._synced
            if synced:
                self._synced.add(kind)
            else:
                self._synced.discard(kind)
        # After a list: a change made between the last read (the pass's own list, or the watch that failed) and
        # this list may come as no event, so wake a pass to compare, or it waits for the timer. After a failure:
        # once, so that the next pass lists this kind itself.
        if synced or was:
            self._on_change()
