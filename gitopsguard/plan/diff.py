"""Deciding whether an object drifted: the server's dry-run result against the live object (pure)."""

from __future__ import annotations

import hashlib
import json
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


def digest(body: KubeObject) -> str:
    """A short, stable fingerprint of a desired body, to notice when Git changed it."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def resource_version(body: KubeObject | None) -> str:
    return str(((body or {}).get("metadata") or {}).get("resourceVersion") or "")


def who_changed(live: KubeObject, ours: str = "gitopsguard") -> str:
    """The most recent writer other than us that owns desired-state fields, from ``managedFields``.

    Controllers that only write ``status`` (and bookkeeping metadata) are not blamed; some writes record
    no manager at all (on 1.20, the scale subresource), and then that is what we say.
    """
    entries = [
        e for e in (live.get("metadata") or {}).get("managedFields") or []
        if e.get("manager") != ours and _owns_desired_state(e.get("fieldsV1") or {})
    ]  # fmt: skip
    if not entries:
        return "a writer that left no field manager (for example the scale subresource)"
    latest = max(entries, key=lambda e: str(e.get("time") or ""))
    return f"{latest.get('manager', '?')} ({latest.get('operation', '?')}) at {latest.get('time', '?')}"


def _owns_desired_state(fields: dict[str, Any]) -> bool:
    metadata = fields.get("f:metadata") or {}
    return any(key not in ("f:status", "f:metadata") for key in fields) or "f:labels" in metadata
