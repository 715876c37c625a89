"""What a unit owns, kept current in memory: per kind, one informer (``informer.py``) filtered by the unit's label.

The continuous loop reads a pass's live objects from here instead of listing every kind again, so a pass
over an unchanged commit lists nothing, and one that follows an edit reads only what the watch brought.
Readers get a copy; the informer threads keep going until ``stop`` is set. A kind whose watch failed
(the API server restarted, the kind went away) is not served until its watch answers again or it has been
listed again: meanwhile the pass lists it itself. A kind whose first list is under way is waited for (up to
``FIRST_LIST_WAIT``) rather than listed by the pass as well: the pass would read the same objects, and at a
restart over 5,000 objects the two lists alive at once were the loop's peak memory (bench/README.md, "Memory").
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from gitopsguard.cluster.apply import PAGE, Applier, KindCache, keyed
from gitopsguard.cluster.informer import Informer, Kind
from gitopsguard.cluster.rest import RawApi
from gitopsguard.model import UNIT_LABEL, KubeObject, ObjectKey

Packed = str | KubeObject  # an object as a cache keeps it (``packed``)
PACK_DEPTH = 100  # containers deep; an object nested deeper is kept parsed (see ``packed``)
# seconds after a kind is tracked that readers wait for its first list, in all, before they list it themselves: a
# deadline, not a wait per read, so that a first list slower than this costs no pass, nor kind, a minute more
FIRST_LIST_WAIT = 60.0
STOP_POLL = 0.1  # seconds between looks at ``stop`` while a reader waits for a first list


def packed(body: KubeObject) -> Packed:
    """An object as a cache keeps it: its compact JSON. A ConfigMap parsed is about 4.4 KiB of dicts and strings
    (half of it managedFields, which the drift check reads), its JSON about 0.6 KiB (bench/README.md, "Where
    the memory goes"); each reader parses a copy of its own. An object nested deeper than ``PACK_DEPTH`` (a
    custom resource can be, 1,500 levels: tests/integration/test_deep_objects.py) stays as parsed: parsed again
    on a deeper stack than the watch's, it could raise RecursionError in a reader. Only ``SharedLiveCache``
    packs: its Units are many and small, and a pass parses its own few objects; a single unit's ``LiveCache``
    keeps them parsed, since its passes read every object it owns (5,000 ConfigMaps parsed again cost
    30-60 ms of CPU a pass)."""
    return body if _deeper_than(body, PACK_DEPTH) else json.dumps(body, separators=(",", ":"))


def unpacked(kept: Packed) -> KubeObject:
    if not isinstance(kept, str):
        return kept
    body: KubeObject = json.loads(kept)
    return body


def _deeper_than(body: KubeObject, depth: int) -> bool:
    level: list[Any] = [body]
    for _ in range(depth):
        level = [v for c in level for v in (c.values() if isinstance(c, dict) else c) if isinstance(v, dict | list)]
        if not level:
            return False
    return True


class _First(NamedTuple):
    """A kind's first list under way: ``listed`` is set once it ended (listed or failed)."""

    listed: threading.Event
    deadline: float  # time.monotonic() after which readers list the kind themselves
    stop: threading.Event  # the loop's: once set (SIGTERM, a lost lease), a reader waits no longer

    def wait(self) -> None:
        while not self.listed.is_set() and not self.stop.is_set():
            left = self.deadline - time.monotonic()
            if left <= 0:
                return
            self.listed.wait(min(left, STOP_POLL))


class LiveCache:
    def __init__(
        self, applier: Applier, raw: RawApi, unit: str, on_change: Callable[[], None], *, page: int = PAGE
    ) -> None:
        self._applier, self._raw, self._on_change, self._page = applier, raw, on_change, page
        self._selector = f"{UNIT_LABEL}={unit}"
        self._informers: dict[Kind, Informer] = {}
        self._synced: set[Kind] = set()
        self._first: dict[Kind, _First] = {}  # the kinds whose first list is under way
        self._lock = threading.Lock()

    def track(self, kind: Kind, stop: threading.Event) -> None:
        """Keep this kind current from now on (once per kind)."""
        with self._lock:
            if kind in self._informers:
                return
            self._first[kind] = _First(threading.Event(), time.monotonic() + FIRST_LIST_WAIT, stop)
            informer = Informer(
                self._applier, self._raw, kind, selector=self._selector, what="owned", page=self._page,
                on_event=lambda _change, _body: self._on_change(), on_sync=lambda synced: self._sync(kind, synced),
            )  # fmt: skip
            self._informers[kind] = informer
        informer.start(stop)

    def objects(self, kind: Kind) -> dict[ObjectKey, KubeObject] | None:
        """A copy of the owned objects of this kind, or None while the kind is not (or no longer) in sync; while
        its first list is under way, what that list brings (waited for until ``FIRST_LIST_WAIT`` seconds after
        the kind was tracked)."""
        with self._lock:
            first = self._first.get(kind)
        if first is not None:
            first.wait()
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
            first = self._first.pop(kind, None)
        if first is not None:
            first.listed.set()
        # After a list: a change made between the last read (the pass's own list, or the watch that failed) and
        # this list may come as no event, so wake a pass to compare, or it waits for the timer. After a failure:
        # once, so that the next pass lists this kind itself.
        if synced or was:
            self._on_change()


class SharedLiveCache:
    """What many units own, kept current with one informer per kind however many units own objects of it
    (the Units loop, ``fleet.py``): the kind is watched once for every object carrying a unit label, and each
    object is filed under its label's value. ``view(unit)`` is one unit's ``KindCache``; every event names its
    unit to ``on_change``, so that only that unit's next pass is due. The label decides the filing, as the
    per-unit selector does for ``LiveCache``: anyone who may label an object can file it under a unit, so this
    is a view to skip work with, never the ground for a delete (prune lists afresh, ``reconcile.py``)."""

    def __init__(self, applier: Applier, raw: RawApi, on_change: Callable[[str], None], *, page: int = PAGE) -> None:
        self._applier, self._raw, self._on_change, self._page = applier, raw, on_change, page
        self._filed: dict[Kind, dict[str, dict[ObjectKey, Packed]]] = {}  # kind -> unit -> objects (``packed``)
        self._unit_of: dict[Kind, dict[ObjectKey, str]] = {}
        self._informers: dict[Kind, Informer] = {}
        self._synced: set[Kind] = set()
        self._lock = threading.Lock()

    def track(self, kind: Kind, stop: threading.Event) -> None:
        """Keep this kind current from now on (once per kind, for every unit)."""
        with self._lock:
            if kind in self._informers:
                return
            self._filed[kind], self._unit_of[kind] = {}, {}
            informer = Informer(
                self._applier, self._raw, kind, selector=UNIT_LABEL, what="owned", keep_objects=False, page=self._page,
                on_event=lambda change, body: self._take(kind, change, body),
                on_sync=lambda synced: self._sync(kind, synced),
            )  # fmt: skip
            self._informers[kind] = informer
        informer.start(stop)

    def kinds(self) -> set[Kind]:
        """The kinds watched."""
        with self._lock:
            return set(self._informers)

    def view(self, unit: str) -> KindCache:
        """One unit's owned objects, as ``LiveCache.objects`` gives them."""
        return _UnitView(self, unit)

    def objects(self, unit: str, kind: Kind) -> dict[ObjectKey, KubeObject] | None:
        """A copy of ``unit``'s objects of this kind, or None while the kind is not (or no longer) in sync."""
        with self._lock:
            if kind not in self._synced:
                return None
            kept = list(self._filed[kind].get(unit, {}).items())
        return {key: unpacked(body) for key, body in kept}

    def _take(self, kind: Kind, change: str, body: KubeObject) -> None:
        key = keyed(body, *kind)
        labels = (body.get("metadata") or {}).get("labels")
        unit = labels.get(UNIT_LABEL) if isinstance(labels, dict) else None
        kept = packed(body) if change != "DELETED" and isinstance(unit, str) else None
        with self._lock:
            before = self._unit_of[kind].pop(key, None)
            if before is not None:
                self._filed[kind].get(before, {}).pop(key, None)
            if kept is not None and isinstance(unit, str):
                self._unit_of[kind][key] = unit
                self._filed[kind].setdefault(unit, {})[key] = kept
        for moved in {before, unit if isinstance(unit, str) else None} - {None}:
            self._on_change(str(moved))

    def _sync(self, kind: Kind, synced: bool) -> None:
        with self._lock:
            was = kind in self._synced
            if synced:
                self._synced.add(kind)
            else:
                self._synced.discard(kind)
            units = list(self._filed[kind]) if synced or was else []
        # as LiveCache: after a list a change may have come as no event, after a failure the units list it
        # themselves; either way each unit owning objects of the kind compares once
        for unit in units:
            self._on_change(unit)


class _UnitView:
    def __init__(self, shared: SharedLiveCache, unit: str) -> None:
        self._shared, self._unit = shared, unit

    def objects(self, kind: Kind) -> dict[ObjectKey, KubeObject] | None:
        return self._shared.objects(self._unit, kind)
