"""Grant state that must survive restarts, kept in the cluster (``ConfigMap/gitopsguard-system/gitopsguard-grants``):
each grant's state and times, the grant itself while it is remembered (so that a restarted keeper can expire
and sweep before it reads the repository again), and the last commit the keeper read (so that a restarted
keeper still refuses a branch rewound behind it).

The ConfigMap stays bounded: a settled grant (EXPIRED, REVOKED, DENIED) is forgotten once its file has been
gone from the repository for FORGET_AFTER by the controller's clock (counted from the first round that found
it gone), never while the file exists (that memory is what keeps a revoked or expired blob from coming back),
and the grant itself is saved only while it is ACTIVE (expiry and the sweep need it before the repository is
read)."""

from __future__ import annotations

import contextlib
import json
import zlib
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from gitopsguard.cluster.configmaps import COMPONENT, ConfigMapStore, Content, Packed, Stored
from gitopsguard.cluster.inventory import CONTROLLER_NAMESPACE
from gitopsguard.cluster.rest import RawApi
from gitopsguard.errors import ClusterError
from gitopsguard.grants.model import Grant, Remembered, State

STORE_NAME = "gitopsguard-grants"
SETTLED = (State.EXPIRED, State.REVOKED, State.DENIED)
FORGET_AFTER = timedelta(days=30)
NEAR_LIMIT = 768 * 1024  # the API server refuses a ConfigMap over 1 MiB: report well before
BUDGET = 900 * 1024  # the packed grants never take more; the commit, history and metadata fit in the rest
PACKED = "grants.json.gz"  # binaryData key: the entries as JSON, gzip-compressed
PACKED_BEFORE = "grants.json.z"  # where versions before the one ConfigMap store kept them, zlib-compressed
MAX_SAVED_REASON = 200  # a decision's reason may quote names from the file; it is for people, not for deciding


@dataclass(frozen=True)
class Entry:
    """One grant as remembered, with what `gitopsguard grants` shows about it."""

    memory: Remembered
    name: str
    subject: str
    role: str
    scope: str
    path: str
    grant: Grant | None = None  # what its binding is made from; kept (and saved) while it is ACTIVE
    gone: datetime | None = None  # since when its file has been absent from the repository, by our clock


def forget_settled(
    entries: dict[str, Entry], present: set[str], now: datetime, current: set[str] | None = None
) -> dict[str, Entry]:
    """``entries`` with each one's ``gone`` brought up to date against ``present`` (the grant files at the
    head), without the settled grants whose file has been gone for more than FORGET_AFTER. A revoked or expired
    grant whose file still exists is kept, however old: forgetting it would let its blob be decided afresh. A
    denied one is kept only while it is among the ``current`` grants (its content still at the head): a denied
    request is decided afresh whenever it comes back anyway, and each unreviewed edit of a file would otherwise
    add to the state for as long as the file exists."""
    kept = {}
    for gid, entry in entries.items():
        if current is not None and entry.memory.state is State.DENIED and gid not in current:
            continue
        gone = None if entry.path in present else entry.gone or now
        if gone is not None and entry.memory.state in SETTLED and now - gone > FORGET_AFTER:
            continue
        kept[gid] = entry if gone == entry.gone else replace(entry, gone=gone)
    return kept


@dataclass(frozen=True)
class Kept:
    """Everything the store holds: the grants, and the last commit read (None before the first read) from
    which history (the repository and branch, without credentials)."""

    entries: dict[str, Entry] = field(default_factory=dict)
    commit: str | None = None
    history: str | None = None


def _time(text: Any) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _grant_row(g: Grant) -> dict[str, Any]:
    return {"name": g.name, "path": g.path, "origin": g.origin, "policy": g.policy, "subjectKind": g.subject_kind,
            "subject": g.subject, "roleKind": g.role_kind, "role": g.role, "namespace": g.namespace,
            "seconds": g.duration.total_seconds(), "reason": g.reason, "content": g.content,
            "index": g.index}  # fmt: skip


def _grant(r: dict[str, Any]) -> Grant:
    return Grant(str(r["name"]), str(r["path"]), str(r["origin"]), str(r["policy"]), str(r["subjectKind"]),
                 str(r["subject"]), str(r["roleKind"]), str(r["role"]), str(r["namespace"]),
                 timedelta(seconds=float(r["seconds"])), str(r["reason"]), str(r["content"]),
                 int(r.get("index") or 0))  # fmt: skip


def _entry(r: dict[str, Any]) -> Entry:
    memory = Remembered(State(r["state"]), datetime.fromisoformat(r["firstSeen"]), _time(r.get("start")),
                        _time(r.get("expires")), r.get("approver", ""), r.get("reason", ""),
                        merge=str(r.get("merge") or ""))  # fmt: skip
    grant = _grant(r["grant"]) if r.get("grant") else None
    return Entry(memory, r["name"], r["subject"], r["role"], r["scope"], r["path"], grant, _time(r.get("gone")))


class GrantStore:
    """The state, through the one ConfigMap store (``configmaps.py``): every save is read-modify-write on the
    ConfigMap's resourceVersion, so saving the last commit read alone never undoes a concurrent save."""

    name = STORE_NAME  # the ConfigMap; a keeper of its own (``Binder.keeper``) keeps its state under its name

    def __init__(self, raw: RawApi, namespace: str = CONTROLLER_NAMESPACE, *, name: str = STORE_NAME) -> None:
        self._raw, self.namespace, self.name = raw, namespace, name
        self._store = ConfigMapStore(raw, namespace)

    def load(self) -> dict[str, Entry]:
        return self.read().entries

    def read(self) -> Kept:
        stored = self._store.read(self.name)
        if stored is None:
            return Kept()
        data, blobs = stored.content.data, stored.content.blobs
        try:
            packed = blobs.get(PACKED) or blobs.get(PACKED_BEFORE)
            rows = json.loads(packed.raw().decode() if packed is not None else data.get("grants") or "{}")
            entries = {gid: _entry(r) for gid, r in rows.items()}
        except (ValueError, KeyError, TypeError, AttributeError, OverflowError, zlib.error) as error:
            raise ClusterError(f"{stored.where}: the remembered grants cannot be read ({type(error).__name__}: "
                               f"{error}); restore it from a backup, or delete it to start afresh (active grants "
                               "are then forgotten and their bindings swept)") from error  # fmt: skip
        return Kept(entries, data.get("commit") or None, data.get("history") or None)

    def save(self, entries: dict[str, Entry], commit: str | None = None, history: str | None = None) -> int:
        """Save it all, compressed; the size of the data saved, in bytes. Settled grants whose file is gone are
        dropped (the longest gone first) when that is what it takes to stay within BUDGET. A save that fails, or
        would not fit, raises, after saving at least the last commit read."""
        packed = fit(entries)
        where = self._store.where(self.name)
        if packed is None:
            self._save_head(commit, history)
            raise ClusterError(f"{where}: the remembered grants need more than the {BUDGET} bytes the state may "
                               f"take ({len(entries)} grants); not saved, the last commit read is kept, what was "
                               "decided since the last save lives only in memory until then: remove settled "
                               "grant files from access/grants/")  # fmt: skip
        data = _head(commit, history)
        try:
            self._store.put(self.name, Content(data, {PACKED: Packed(packed)}, {COMPONENT: "grants"}))
        except ClusterError as error:
            self._save_head(commit, history)
            raise ClusterError(f"{where}: cannot save ({error}); the last commit read is kept, what was decided "
                               "since the last save lives only in memory") from error  # fmt: skip
        return len(packed) + sum(len(v.encode()) for v in data.values())

    def _save_head(self, commit: str | None, history: str | None) -> None:
        """Save only the last commit read (and its history), leaving the grants as last saved: a restarted
        keeper must still refuse a branch rewound or swapped behind what was read. Best effort: the caller
        raises anyway."""
        head = _head(commit, history)
        if not head:
            return

        def with_head(current: Stored | None) -> Content:
            if current is None:
                return Content(head, {}, {COMPONENT: "grants"})
            was = current.content
            return Content({**was.data, **head}, was.blobs, was.labels)

        with contextlib.suppress(ClusterError):
            self._store.update(self.name, with_head)


def _head(commit: str | None, history: str | None) -> dict[str, str]:
    return {key: value for key, value in (("commit", commit), ("history", history)) if value}


def _row(e: Entry) -> dict[str, Any]:
    m = e.memory
    return {"state": m.state.value, "firstSeen": m.first_seen.isoformat(),
            "start": m.start.isoformat() if m.start else "", "expires": m.expires.isoformat() if m.expires else "",
            "approver": m.approver, "reason": m.reason[:MAX_SAVED_REASON], "merge": m.merge, "name": e.name,
            "subject": e.subject, "role": e.role, "scope": e.scope, "path": e.path,
            "gone": e.gone.isoformat() if e.gone else "",
            "grant": _grant_row(e.grant) if e.grant and m.state is State.ACTIVE else None}  # fmt: skip


def pack(entries: dict[str, Entry]) -> str:
    """The entries as saved: JSON, compressed, base64 (a ConfigMap's binaryData)."""
    rows = {gid: _row(e) for gid, e in sorted(entries.items())}
    return Packed.of(json.dumps(rows, separators=(",", ":"), ensure_ascii=False).encode()).text


def fit(entries: dict[str, Entry]) -> str | None:
    """``entries`` packed within BUDGET, without as many settled, gone grants as that takes (the longest gone
    first: nothing else may be forgotten early); None when even that does not fit."""
    packed = pack(entries)
    if len(packed) <= BUDGET:
        return packed
    droppable = sorted((e.gone, gid) for gid, e in entries.items() if e.gone and e.memory.state in SETTLED)
    kept = dict(entries)
    for step in range(1, 9):  # drop an eighth more each time; the packed size is close to linear in the rows
        for _, gid in droppable[: len(droppable) * step // 8]:
            kept.pop(gid, None)
        if len(packed := pack(kept)) <= BUDGET:
            return packed
    return None


def _inflate(text: Any) -> str:
    """The rows saved by ``pack`` (or, zlib-compressed, by earlier versions); bounded, since the ConfigMap is
    only as trustworthy as who may edit it."""
    return Packed(str(text)).raw().decode()
