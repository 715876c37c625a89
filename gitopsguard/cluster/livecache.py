"""What a unit owns, kept current in memory: per kind, one list and then a watch from its resourceVersion.

The continuous loop reads a pass's live objects from here instead of listing every kind again, so a pass
over an unchanged commit lists nothing, and one that follows an edit reads only what the watch brought.
Readers get a copy; the watch threads keep going until ``stop`` is set. A kind whose watch is broken
(the API server restarted, the kind went away) is not served until it has been listed again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from gitopsguard.cluster.apply import Applier, keyed
from gitopsguard.cluster.rest import RawApi
from gitopsguard.errors import GitOpsGuardError
from gitopsguard.model import KubeObject, ObjectKey
from gitopsguard.plan.prepare import UNIT_LABEL

Kind = tuple[str, str]  # (apiVersion, kind)
WATCH_SECONDS = 300  # the server ends a watch after this; the kind is then listed again


class LiveCache:
    def __init__(self, applier: Applier, raw: RawApi, unit: str, on_change: Callable[[], None]) -> None:
        self._applier, self._raw, self._on_change = applier, raw, on_change
        self._selector = f"{UNIT_LABEL}={unit}"
        self._objects: dict[Kind, dict[ObjectKey, KubeObject]] = {}
        self._synced: set[Kind] = set()
        self._tracked: set[Kind] = set()
        self._lock = threading.Lock()

    def track(self, kind: Kind, stop: threading.Event) -> None:
        """Keep this kind current from now on (once per kind)."""
        with self._lock:
            if kind in self._tracked:
                return
            self._tracked.add(kind)
        threading.Thread(target=self._follow, args=(kind, stop), name=f"live-{kind[1]}", daemon=True).start()

    def objects(self, kind: Kind) -> dict[ObjectKey, KubeObject] | None:
        """A copy of the owned objects of this kind, or None while the kind is not (or no longer) in sync."""
        with self._lock:
            return dict(self._objects[kind]) if kind in self._synced else None

    def _follow(self, kind: Kind, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                version = self._list(kind)
                self._watch(kind, version, stop)
            except GitOpsGuardError:
                with self._lock:
                    was_synced = kind in self._synced
                    self._synced.discard(kind)
                if was_synced:
                    self._on_change()  # once: the next pass lists this kind itself
                stop.wait(1.0)

    def _list(self, kind: Kind) -> str:
        objects, version = self._applier.list_kind(*kind, query={"labelSelector": self._selector}, what="owned")
        with self._lock:
            self._objects[kind] = objects
            self._synced.add(kind)
        # A change made between the last read (the pass's own list, or the watch that ended) and this list
        # comes as no event: wake a pass to compare, or it waits for the timer.
        self._on_change()
        return version

    def _watch(self, kind: Kind, version: str, stop: threading.Event) -> None:
        path = self._applier.collection_path(*kind)
        query = {"labelSelector": self._selector, "resourceVersion": version, "timeoutSeconds": str(WATCH_SECONDS)}
        started = time.monotonic()
        for event in self._raw.watch(path, query):
            if stop.is_set():
                return
            if event.get("type") == "ERROR":  # typically 410 Gone: too far behind; list again
                return
            self._apply_event(kind, str(event.get("type")), event.get("object") or {})
            self._on_change()
        if time.monotonic() - started < 1.0:
            stop.wait(1.0)  # a watch the server ends at once: do not spin

    def _apply_event(self, kind: Kind, change: str, body: dict[str, Any]) -> None:
        key = keyed(body, *kind)
        with self._lock:
            objects = self._objects.setdefault(kind, {})
            if change == "DELETED":  # also sent when an object stops carrying our label
                objects.pop(key, None)
            elif change in ("ADDED", "MODIFIED"):
                objects[key] = body
