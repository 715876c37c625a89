"""One kind kept current: list, then watch from the list's resourceVersion, for as long as the process runs.

The loop's live cache and the live scan both follow the cluster through this; it is the one place that
knows how a watch fails:

- the server ends every watch after ``timeout`` seconds (``timeoutSeconds``), and the socket's read timeout
  is that plus ``READ_SLACK``: a connection that goes silent without closing (a dead peer, a stalled proxy)
  is noticed and the watch resumed, instead of waiting forever;
- a watch resumes from the last resourceVersion it saw; bookmarks (``allowWatchBookmarks``) advance it even
  while nothing matching the selector changes, so a quiet watch does not fall behind the server's window;
- when the server no longer keeps that version (410 Gone, or an ERROR event "too old resource version"),
  the kind is listed again, and the list is compared with what was known: callers get the differences as
  ADDED / MODIFIED / DELETED events, so nothing that happened while the watch was away is lost;
- a list is read in pages (``page`` objects each, ``limit``/``continue``), each page handed on before the next
  is read; a continue token the server no longer serves (410 Expired, once etcd compacted the list's revision)
  starts the list again from the first page; a list that fails part way changes nothing ``objects`` gives;
- between failures it waits, doubling up to ``MAX_BACKOFF`` with jitter, and says so (``on_sync(False)``).

Only ``GitOpsGuardError`` is survived: any other exception ends the thread, and the lifeline
(``gitopsguard/lifeline.py``) ends the process with it.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from gitopsguard.cluster.apply import PAGE, Applier, ListExpiredError, keyed
from gitopsguard.cluster.rest import RawApi
from gitopsguard.errors import ClusterError, GitOpsGuardError
from gitopsguard.model import KubeObject, ObjectKey

Kind = tuple[str, str]  # (apiVersion, kind)
WATCH_SECONDS = 300  # the server ends a watch after this; it is then resumed from the last resourceVersion
READ_SLACK = 15.0  # a watch silent for its timeout plus this long is dead (the server would have ended it)
FIRST_BACKOFF = 0.5  # seconds after the first failure in a row ...
MAX_BACKOFF = 30.0  # ... doubling up to this
QUICK_END = 1.0  # a watch the server ends sooner than this counts as a failure: do not spin
RESTARTS = 3  # a paged list whose continue token expired is started again up to this many times, then failed


class _Known(NamedTuple):  # one per object watched (the live scan follows every Pod): a tuple is built fastest
    """What is remembered of an object to compare it with a relist: enough to tell it changed or went."""

    uid: str
    version: str
    body: KubeObject | None  # kept only when the caller reads objects back (``keep_objects``)


class WatchExpiredError(ClusterError):
    """The server no longer keeps the resourceVersion a watch resumed from: the kind must be listed again."""


class Informer:
    """Follows one kind (optionally filtered by a label selector); ``run`` blocks until ``stop`` is set.

    ``on_event(type, body)`` gets every ADDED / MODIFIED / DELETED, from the watch or from comparing a relist;
    ``on_sync(True)`` follows every list (and a watch resumed after a failure once it answers), and
    ``on_sync(False)`` every failure. Callbacks run on the informer's thread.
    """

    def __init__(
        self, applier: Applier, raw: RawApi, kind: Kind, *, on_event: Callable[[str, KubeObject], None],
        on_sync: Callable[[bool], None] = lambda _: None, selector: str = "", keep_objects: bool = True,
        timeout: int = WATCH_SECONDS, read_slack: float = READ_SLACK, what: str = "", namespace: str | None = None,
        page: int = PAGE,
    ) -> None:  # fmt: skip
        self._applier, self._raw, self.kind, self._namespace = applier, raw, kind, namespace  # None: every namespace
        self._on_event, self._on_sync = on_event, on_sync
        self._selector, self._keep, self._what = selector, keep_objects, what or f"watched {kind[1]}"
        self._timeout, self._read_timeout = timeout, timeout + read_slack
        self._known: dict[ObjectKey, _Known] = {}
        # told to the caller by a list that then failed: compared with by the next list, never served by ``objects``
        self._unconfirmed: dict[ObjectKey, _Known] = {}
        self._page = page
        self._version = ""  # "" until listed: the next round lists
        self._lock = threading.Lock()
        self.relists = 0  # how many times the kind was listed (the first included)

    @property
    def resource_version(self) -> str:
        """The version the next watch resumes from ("" before the first list)."""
        return self._version

    def objects(self) -> dict[ObjectKey, KubeObject]:
        """A copy of the objects known now (empty unless ``keep_objects``)."""
        with self._lock:
            return {key: known.body for key, known in self._known.items() if known.body is not None}

    def get(self, key: ObjectKey) -> KubeObject | None:
        """One object known now, without copying the rest (None when not known, or not ``keep_objects``)."""
        with self._lock:
            known = self._known.get(key)
        return known.body if known is not None else None

    def seed(self, objects: Mapping[ObjectKey, KubeObject], version: str) -> None:
        """Start from a list the caller made itself (and has already acted on): no events for it."""
        with self._lock:
            self._known = {key: self._remembered(body) for key, body in objects.items()}
        self._unconfirmed, self._version = {}, version

    def start(self, stop: threading.Event) -> threading.Thread:
        thread = threading.Thread(target=self.run, args=(stop,), name=f"watch-{self.kind[1]}", daemon=True)
        thread.start()
        return thread

    def run(self, stop: threading.Event) -> None:
        failures = 0
        while not stop.is_set():
            error: GitOpsGuardError | None = None
            try:
                if not self._version:
                    self._relist()
                failures = 0 if self._watch(stop, resumed=failures > 0) else failures + 1
            except WatchExpiredError:
                self._version = ""  # list again: the server keeps no older history to wait for
                failures += 1  # a short pause the first time; expired again and again waits longer
            except GitOpsGuardError as failed:
                failures, error = failures + 1, failed
                self._on_sync(False)
            if failures:
                stop.wait(wait_after(error, failures))

    # -- listing -------------------------------------------------------------------------------------

    def _relist(self) -> None:
        """List, page by page, and hand on the differences with what the caller was told as events (none the
        first time through ``seed``; every object ADDED the first time otherwise): each page's ADDED and
        MODIFIED as it arrives, so that no more than a page of bodies is held for the caller (the shared cache
        packs them as they come), and the DELETED once the last page is in (only the whole list says what went).
        What the informer knows, and so ``objects``, changes only once the whole list is in: a list that fails
        part way leaves it as it was, the kind out of sync (``run``) until a later list completes."""
        told: dict[ObjectKey, _Known] = {}  # what this list told the caller that it had not been told before
        try:
            fresh, version = self._listed(told)
        except GitOpsGuardError:
            self._unconfirmed |= told  # the next list compares with it: what went meanwhile is then DELETED
            raise
        earlier = self._known | self._unconfirmed | told
        for key in earlier.keys() - fresh.keys():
            self._on_event("DELETED", _tombstone(self.kind, key, earlier[key]))
        with self._lock:
            self._known = fresh
        self._unconfirmed, self._version = {}, version
        self.relists += 1
        self._on_sync(True)

    def _listed(self, told: dict[ObjectKey, _Known]) -> tuple[dict[ObjectKey, _Known], str]:
        """Every object, remembered, and the list's resourceVersion; started again from the first page when the
        server no longer serves the rest (``RESTARTS`` times, then ClusterError)."""
        query = {"labelSelector": self._selector} if self._selector else None
        for _ in range(RESTARTS):
            fresh: dict[ObjectKey, _Known] = {}
            version = ""
            pages = self._applier.list_pages(*self.kind, namespace=self._namespace, query=query, what=self._what,
                                             limit=self._page)  # fmt: skip
            try:
                for page, listed_at in pages:
                    fresh |= {key: self._told(key, body, told) for key, body in page.items()}
                    version = listed_at
            except ListExpiredError:
                continue
            return fresh, version
        raise ClusterError(f"{self._what}: the list's continue token expired {RESTARTS} times in a row; listing "
                           "again later")  # fmt: skip

    def _told(self, key: ObjectKey, body: KubeObject, told: dict[ObjectKey, _Known]) -> _Known:
        """``body`` remembered, after telling the caller how it differs from what the caller last heard of it."""
        remembered = self._remembered(body)
        old = told.get(key) or self._unconfirmed.get(key) or self._known.get(key)
        if old is None or old.uid != remembered.uid:
            if old is not None:  # the same name, another object: the old one went
                self._on_event("DELETED", _tombstone(self.kind, key, old))
            self._on_event("ADDED", body)
            told[key] = remembered
        elif old.version != remembered.version:
            self._on_event("MODIFIED", body)
            told[key] = remembered
        return remembered

    def _remembered(self, body: KubeObject) -> _Known:
        return _Known(_uid(body), _version(body), body if self._keep else None)

    # -- watching ------------------------------------------------------------------------------------

    def _watch(self, stop: threading.Event, *, resumed: bool) -> bool:
        """One watch from the current version until the server ends it; whether it lasted (a watch ended
        at once counts as a failure). Raises WatchExpiredError, or ClusterError when the connection fails."""
        path = self._applier.collection_path(*self.kind, self._namespace)
        query = {"resourceVersion": self._version, "allowWatchBookmarks": "true", "timeoutSeconds": str(self._timeout)}
        if self._selector:
            query["labelSelector"] = self._selector
        started = time.monotonic()
        # after a failure, what was known is current again once the server accepts the resumed watch: the
        # events since the version it resumes from follow at once
        opened = (lambda: self._on_sync(True)) if resumed else (lambda: None)
        for event in self._raw.watch(path, query, read_timeout=self._read_timeout, on_open=opened):
            if stop.is_set():
                return True
            self._take(event)
        return time.monotonic() - started >= QUICK_END

    def _take(self, event: dict[str, Any]) -> None:
        change, body = str(event.get("type")), event.get("object")
        if not isinstance(body, dict):
            raise ClusterError(f"{self._what}: a watch event without an object ({change}); watching again")
        if change == "ERROR":
            raise _error_of(self._what, body)
        version = _version(body)
        if change == "BOOKMARK":
            self._version = version or self._version
            return
        if change not in ("ADDED", "MODIFIED", "DELETED"):
            raise ClusterError(f"{self._what}: unknown watch event type {change[:40]!r}; watching again")
        key = keyed(body, *self.kind)
        with self._lock:
            if change == "DELETED":  # also sent when an object stops matching the selector
                self._known.pop(key, None)
            else:
                self._known[key] = self._remembered(body)
        self._version = version or self._version
        self._on_event(change, body)


def wait_after(error: GitOpsGuardError | None, failures: int) -> float:
    """The server's own delay when it gave one for a failure worth retrying (Retry-After on a throttled list
    or watch), within ``MAX_BACKOFF``; else ``backoff``. A refusal that waiting cannot cure (RBAC) still
    backs off, doubling: a role granted later is picked up without a restart."""
    delay = error.delay if error is not None and error.retryable else None
    if delay is not None and math.isfinite(delay):
        return min(max(delay, FIRST_BACKOFF / 5), MAX_BACKOFF)
    return backoff(failures)


def backoff(failures: int) -> float:
    """Seconds to wait after ``failures`` failures in a row: doubling, bounded, with jitter so that many
    watches cut at once do not all come back in the same instant."""
    ceiling = min(MAX_BACKOFF, FIRST_BACKOFF * 2.0 ** min(failures - 1, 16))
    return ceiling * random.uniform(0.5, 1.0)  # noqa: S311 (jitter, not a secret)


def _error_of(what: str, status: KubeObject) -> ClusterError:
    """An ERROR event's Status: WatchExpiredError when the version expired, else a failure to retry later."""
    message = str(status.get("message") or "")[:300]
    if status.get("code") == 410 or status.get("reason") in ("Expired", "Gone") or "too old resource" in message:
        return WatchExpiredError(f"{what}: the watch's resourceVersion expired ({message}); listing again")
    return ClusterError(f"{what}: the watch failed (HTTP {status.get('code')}: {message}); watching again")


def _uid(body: KubeObject) -> str:
    return str((body.get("metadata") or {}).get("uid") or "")


def _version(body: KubeObject) -> str:
    return str((body.get("metadata") or {}).get("resourceVersion") or "")


def _tombstone(kind: Kind, key: ObjectKey, known: _Known) -> KubeObject:
    """What a DELETED event from a relist carries: the last body known, else the object's identity."""
    if known.body is not None:
        return known.body
    metadata = {"name": key.name, "uid": known.uid, "resourceVersion": known.version}
    if key.namespace:
        metadata["namespace"] = key.namespace
    return {"apiVersion": kind[0], "kind": kind[1], "metadata": metadata}
