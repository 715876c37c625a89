"""Deciding whether an object drifted: the server's dry-run result against the live object (pure)."""

from __future__ import annotations

import hashlib
import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from gitopsguard.model import KubeObject

# Fields the server changes on every write, or that say nothing about the object's desired state.
_VOLATILE_METADATA = ("managedFields", "resourceVersion", "generation", "creationTimestamp", "uid", "selfLink")


def normalized(body: KubeObject) -> dict[str, Any]:
    copy = {k: v for k, v in body.items() if k != "status"}
    metadata = {k: v for k, v in (body.get("metadata") or {}).items() if k not in _VOLATILE_METADATA}
    copy["metadata"] = metadata
    return copy


def has_changed(dry_run_result: KubeObject, live: KubeObject | None) -> bool:
    """True when applying would change the live object (or there is none): the dry run already holds
    what the server would store, so equal normalised bodies mean nothing to write."""
    return live is None or normalized(dry_run_result) != normalized(live)


def still_as_applied(live: KubeObject, desired: KubeObject, ours: str = "gitopsguard") -> bool:
    """True when the live object still holds every field of the desired body, and no writer other than
    us has written a field the desired body sets since our last apply: what status updates, a controller's
    bookkeeping annotations and fields others add beside ours (the token controller's ``secrets`` of a
    ServiceAccount) leave behind. Anything else goes to the dry run, which judges exactly."""
    return _holds(live, desired) and not _written_since_us(live, desired, ours)


def _holds(live: Any, desired: Any, key: str = "", container: str = "") -> bool:
    """``live`` has every field ``desired`` sets, with the same value (defaults the server added are fine;
    a null in ``desired`` has no opinion; quantities in resource lists compare by value: 0.5 == 500m)."""
    if isinstance(desired, dict):
        if not isinstance(live, dict):
            return False
        return all(v is None or (k in live and _holds(live[k], v, k, key)) for k, v in desired.items())
    if isinstance(desired, list):
        return isinstance(live, list) and len(live) == len(desired) and all(map(_holds, live, desired))
    if isinstance(desired, bool) or isinstance(live, bool):
        return live is desired
    if isinstance(desired, int | float) and isinstance(live, int | float):
        return live == desired
    if container in RESOURCE_LISTS and live != desired:
        return quantity(live) == quantity(desired) is not None
    return type(live) is type(desired) and live == desired


RESOURCE_LISTS = frozenset(("limits", "requests", "hard", "capacity", "allocatable"))
_SUFFIXES: dict[str, int | Decimal] = {
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
    "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": 1,
    "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
}  # fmt: skip
_QUANTITY = re.compile(r"([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|)")


def quantity(value: Any) -> Decimal | None:
    """The value of a Kubernetes quantity ("500m", "1Gi", "2", 0.5), or None when it is not one."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return Decimal(str(value))
    if not isinstance(value, str) or not (match := _QUANTITY.fullmatch(value)):
        return None
    try:
        return Decimal(match[1]) * Decimal(_SUFFIXES[match[2]])
    except InvalidOperation:
        return None


def _ours(entry: dict[str, Any], ours: str) -> bool:
    """Whether a managedFields entry may be our apply. We only ever apply: an Update under our manager name
    is someone else's write, however it is named."""
    return entry.get("manager") == ours and entry.get("operation") == "Apply"


def _written_since_us(live: KubeObject, desired: KubeObject, ours: str) -> bool:
    """Whether a writer other than us, since our last apply, owns a field the desired body sets. The desired
    body, not our own managedFields entry, is what is compared: a tenant's Update that changes a field we
    applied takes its ownership from us, so our entry no longer names it. Needs the live object's managedFields,
    also from the Units loop's cache (``cluster/livecache.py``): without them every object that moved would go
    to a dry run again."""
    entries = (live.get("metadata") or {}).get("managedFields") or []
    applied = [str(e.get("time") or "") for e in entries if _ours(e, ours)]
    if not applied:
        return True  # our fields were all taken by someone else
    desired_state = {k: v for k, v in desired.items() if k != "status"}  # status is never desired state
    return any(
        str(e.get("time") or "") >= max(applied) and _touches(e.get("fieldsV1"), desired_state)
        for e in entries
        if not _ours(e, ours)
    )


def _touches(fields: Any, desired: Any) -> bool:
    """Whether a managedFields set (``fieldsV1``: ``{"f:spec": {"f:replicas": {}}}``) reaches a field of
    ``desired``: at it, under it or over it. A value or a list the desired body sets is compared whole (an
    element of a list we set is ours to judge however it is keyed). Anything unexpected (a set that is not a
    map, a list element's key where the desired body has a map) touches: fail closed."""
    if not isinstance(desired, dict):
        return True  # a value or a list we set, reached by the other writer's set
    if not isinstance(fields, dict) or not fields:
        return True  # the other writer owns the whole map or struct we set fields of
    for key, below in fields.items():
        if key == ".":
            continue  # that the map exists, which every writer of a field in it shares
        if not isinstance(key, str) or not key.startswith("f:"):
            return True  # an element key (k:, v:, i:) where the desired body has a map
        if desired.get(key[2:]) is not None and _touches(below, desired[key[2:]]):
            return True
    return False


def digest(body: KubeObject) -> str:
    """A short, stable fingerprint of a desired body, to notice when Git changed it."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def resource_version(body: KubeObject | None) -> str:
    return str(((body or {}).get("metadata") or {}).get("resourceVersion") or "")


def who_changed(live: KubeObject, ours: str = "gitopsguard") -> str:
    """The writer of desired-state fields after our last apply, from ``managedFields``; called only for an
    object that drifted, that is, whose resourceVersion is not the one our own write produced.

    A field-manager name is a claim: an Update named ``gitopsguard`` is not ours (we only apply), and an
    Apply named ``gitopsguard`` cannot be told from ours here (the audit trail names the authenticated user).
    A writer older than the latest such Apply was overwritten by it, so it is never blamed. Controllers
    that only write ``status`` are not blamed either; some writes record no manager at all (on 1.20, the
    scale subresource), and then that is what we say.
    """
    managed = (live.get("metadata") or {}).get("managedFields") or []
    entries = [e for e in managed if _owns_desired_state(e.get("fieldsV1") or {})]
    last_apply = max((str(e.get("time") or "") for e in entries if _ours(e, ours)), default="")
    suspects = [e for e in entries if not _ours(e, ours) and str(e.get("time") or "") >= last_apply]
    if not suspects:
        return (
            f"a writer that left no field manager of its own (for example the scale subresource, or a write "
            f"under the field manager name {ours})"
        )
    latest = max(suspects, key=lambda e: str(e.get("time") or ""))
    return f"{latest.get('manager', '?')} ({latest.get('operation', '?')}) at {latest.get('time', '?')}"


def _owns_desired_state(fields: dict[str, Any]) -> bool:
    metadata = fields.get("f:metadata") or {}
    return any(key not in ("f:status", "f:metadata") for key in fields) or "f:labels" in metadata
