"""What the live scan must remember across restarts: for each non-compliant workload (by uid), when it was
first found so (the grace period counts from there, so a restart does not reset it) and the findings last
announced (so nothing is announced twice).

Tenants decide how many workloads there are, so the state is kept per namespace, one ConfigMap each in the
controller's namespace, gzip-compressed and bounded: one namespace's volume can neither make another's
write too large nor push anything past the API server's limits. Past ``MAX_TRACKED`` workloads (or the byte
budget) a namespace keeps its oldest sightings and reports how many were left out: those are remembered in
memory only, so a restart starts their grace period again (later deletion, never earlier).

Each unit's live scan keeps a state of its own (``ScanStateStore(scan=UNIT)``): ConfigMaps named
``gitopsguard-live-scan.UNIT.NAMESPACE`` and labelled ``gitopsguard.io/live-scan: UNIT``, so two units scanning
the same namespace under different policies never overwrite, or delete, each other's first sightings (a grace
period restarted by another unit's save). The scan of no unit (`gitopsguard scan`) keeps the names it always had.
A namespace name has no dot, so the last dot-separated part of a name is always its namespace.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Container, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from gitopsguard.cluster.configmaps import COMPONENT as COMPONENT_LABEL
from gitopsguard.cluster.configmaps import ConfigMapStore, Content, Packed, Stored
from gitopsguard.cluster.inventory import CONTROLLER_NAMESPACE
from gitopsguard.cluster.rest import RawApi
from gitopsguard.errors import ClusterError

STATE_NAME = "gitopsguard-live-scan"  # before 21.6 the whole cluster's state; now read once, then removed
COMPONENT = "live-scan-state"
SCAN_LABEL = "gitopsguard.io/live-scan"  # the unit whose live scan a state ConfigMap belongs to
_NAMESPACE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")  # a DNS label
# a unit id: a label value (at most 63) made of DNS labels joined by dots, so it fits in a ConfigMap's name
_UNIT = re.compile(r"(?=.{1,63}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
MAX_TRACKED = 10_000  # workloads remembered per namespace
MAX_BYTES = 512 * 1024  # compressed, per namespace: well inside a ConfigMap's 1 MiB


@dataclass(frozen=True)
class Tracked:
    subject: str  # Kind/namespace/name, for people reading the ConfigMap
    first_seen: datetime
    announced: str  # digest of the findings last announced

    @property
    def namespace(self) -> str:
        return self.subject.split("/")[1] if self.subject.count("/") >= 2 else ""


@dataclass(frozen=True)
class Saved:
    """One namespace's write: how many workloads it holds and how many did not fit."""

    namespace: str
    kept: int
    left_out: int


def state_name(namespace: str, scan: str = "") -> str:
    """The ConfigMap of one namespace (namespace names are DNS labels; anything else is hashed), for the live
    scan of unit ``scan`` (none: the scan of no unit)."""
    # ASCII DNS labels only ("ß" is lower-case and alphanumeric to Python); anything else is hashed
    plain = _NAMESPACE.fullmatch(namespace)
    part = namespace if plain else f"x{hashlib.sha256(namespace.encode()).hexdigest()[:32]}"
    return f"{STATE_NAME}.{scan_id(scan)}.{part}" if scan else f"{STATE_NAME}-{part}"


def scan_id(unit: str) -> str:
    """A unit's id as its scan state carries it (a label value and part of a name): the unit's name when it
    can be, else a stable hash of it (as ``unit_id`` does for long Unit names)."""
    return unit if _UNIT.fullmatch(unit) else f"u{hashlib.sha256(unit.encode()).hexdigest()[:32]}"


def pack(rows: list[list[object]], budget: int = MAX_BYTES) -> tuple[str, int]:
    """The oldest rows that fit, compressed and base64-encoded, and how many rows did not fit."""
    kept = sorted(rows, key=lambda row: (str(row[1]), str(row[0])))[:MAX_TRACKED]
    while True:
        packed = Packed.of(json.dumps(kept, separators=(",", ":")).encode())
        if packed.size <= budget or not kept:
            return packed.text, len(rows) - len(kept)
        kept = kept[: max(0, int(len(kept) * budget / packed.size * 0.9))]


class ScanStateStore:
    """Each namespace's state through the one ConfigMap store (``configmaps.py``)."""

    def __init__(self, raw: RawApi, namespace: str = CONTROLLER_NAMESPACE, *, scan: str = "") -> None:
        self._raw, self.namespace, self.scan = raw, namespace, scan_id(scan) if scan else ""
        self._store = ConfigMapStore(raw, namespace)
        self.legacy = False  # the old cluster-wide ConfigMap is still there (removed once all is saved anew)
        # only this scan's ConfigMaps: a unit's are labelled with it, the scan of no unit's carry no such label
        mine = f"{SCAN_LABEL}={self.scan}" if self.scan else f"!{SCAN_LABEL}"
        self._selector = f"{COMPONENT_LABEL}={COMPONENT},{mine}"
        self._labels = {COMPONENT_LABEL: COMPONENT, **({SCAN_LABEL: self.scan} if self.scan else {})}

    def load(self) -> tuple[dict[str, Tracked], list[str]]:
        """Every namespace's remembered workloads, and the problems met (a damaged ConfigMap is skipped:
        its workloads' grace periods start again, never sooner)."""
        tracked, problems = self._load_legacy() if not self.scan else ({}, [])
        found, unreadable = self._store.list(selector=self._selector)
        problems += [f"{error} (skipped: its workloads' grace periods start again)" for error in unreadable]
        for stored in found.values():
            try:
                tracked |= _unpack(stored)
            except (ValueError, TypeError, KeyError, IndexError, ClusterError) as error:
                problems.append(f"{stored.where}: damaged live-scan state skipped ({error})")
        return tracked, problems

    def save(self, namespace: str, tracked: Iterable[tuple[str, Tracked]]) -> Saved:
        """Replace one namespace's state. Raises ClusterError when the API server refuses it."""
        rows: list[list[object]] = [[uid, t.first_seen.isoformat(), t.announced, t.subject.rsplit("/", 1)[-1][:40]]
                                    for uid, t in tracked]  # fmt: skip
        name = state_name(namespace, self.scan)
        try:
            if not rows:  # nothing left to remember: no ConfigMap left behind per namespace ever flagged
                self._store.delete(name)
                return Saved(namespace, 0, 0)
            packed, left_out = pack(rows)
            data = {"namespace": namespace, "count": str(len(rows) - left_out), "leftOut": str(left_out)}
            self._store.put(name, Content(data, {"tracked.json.gz": Packed(packed)}, dict(self._labels)))
        except ClusterError as error:
            raise ClusterError(f"{self._store.where(name)}: cannot save the live scan's state of namespace "
                               f"{namespace} ({error})") from error  # fmt: skip
        return Saved(namespace, len(rows) - left_out, left_out)

    def drop_legacy(self) -> None:
        """Remove the old cluster-wide ConfigMap once every namespace's state is saved on its own."""
        self._store.delete(STATE_NAME)
        self.legacy = False

    def _load_legacy(self) -> tuple[dict[str, Tracked], list[str]]:
        stored = self._store.read(STATE_NAME)
        if stored is None:
            return {}, []
        self.legacy = True
        try:
            rows = json.loads(stored.content.data.get("tracked") or "{}")
            return {uid: Tracked(r[0], datetime.fromisoformat(r[1]), r[2]) for uid, r in rows.items()}, []
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as error:
            return {}, [f"{stored.where}: damaged live-scan state skipped ({error})"]


def _unpack(stored: Stored) -> dict[str, Tracked]:
    namespace = str(stored.content.data.get("namespace") or "")
    rows = stored.json("tracked.json.gz") or []
    found = {}
    for uid, first_seen, announced, name in rows:
        seen = datetime.fromisoformat(str(first_seen))
        found[str(uid)] = Tracked(f"?/{namespace}/{name}", seen if seen.tzinfo else seen.replace(tzinfo=UTC),
                                  str(announced))  # fmt: skip
    return found


class ScanMemory:
    """The remembered workloads, in memory, saved per namespace when they change. A namespace whose write is
    refused waits ``RETRY`` seconds before the next try (no hot loop) and is reported once until it saves;
    a namespace over its bound is reported once until it fits again."""

    RETRY = 60.0

    def __init__(
        self, store: ScanStateStore, report: Callable[[str], None], *, owns_all: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        self._store, self._report, self._clock = store, report, clock
        self._owns_all = owns_all  # a scan of some namespaces only never removes the old cluster-wide state
        self._tracked, problems = store.load()
        for problem in problems:
            report(problem)
        self._dirty = {t.namespace for t in self._tracked.values()} if store.legacy else set()
        self._retry_at: dict[str, float] = {}
        self._failing: set[str] = set()
        self._overflowing: set[str] = set()

    def get(self, uid: str) -> Tracked | None:
        return self._tracked.get(uid)

    def put(self, uid: str, tracked: Tracked) -> None:
        self._tracked[uid] = tracked
        self._dirty.add(tracked.namespace)

    def pop(self, uid: str) -> Tracked | None:
        gone = self._tracked.pop(uid, None)
        if gone is not None:
            self._dirty.add(gone.namespace)
        return gone

    def keep_only(self, present: Container[str], in_scope: Callable[[str], bool]) -> None:
        """Forget in-scope workloads that no longer exist (deleted while no scan was running)."""
        for uid in [u for u, t in self._tracked.items() if u not in present and in_scope(t.namespace)]:
            self.pop(uid)

    def save(self) -> None:
        """Write each changed namespace whose last refusal is old enough."""
        now = self._clock()
        due = {n for n in self._dirty if self._retry_at.get(n, 0.0) <= now}
        rows: dict[str, list[tuple[str, Tracked]]] = {n: [] for n in due}
        for uid, tracked in self._tracked.items():
            if tracked.namespace in due:
                rows[tracked.namespace].append((uid, tracked))
        for namespace in sorted(due):
            self._save(namespace, rows[namespace], now)
        if self._store.legacy and self._owns_all and not self._dirty:
            try:
                self._store.drop_legacy()
            except ClusterError as error:
                self._report(str(error))

    def _save(self, namespace: str, rows: list[tuple[str, Tracked]], now: float) -> None:
        try:
            saved = self._store.save(namespace, rows)
        except ClusterError as error:
            self._retry_at[namespace] = now + self.RETRY
            if namespace not in self._failing:
                self._failing.add(namespace)
                self._report(f"{error}; tried again every {self.RETRY:.0f} s, other namespaces are not affected")
            return
        self._dirty.discard(namespace)
        self._retry_at.pop(namespace, None)
        self._failing.discard(namespace)
        if not saved.left_out:
            self._overflowing.discard(namespace)
        elif namespace not in self._overflowing:
            self._overflowing.add(namespace)
            self._report(
                f"namespace {namespace}: {saved.kept + saved.left_out} non-compliant workloads, more than the live "
                f"scan remembers per namespace; {saved.left_out} newest first sightings are kept in memory only "
                "(a restart starts their grace periods again; nothing is deleted sooner)"
            )
