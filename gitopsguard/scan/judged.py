"""A workload as the live scan judged it: what the scan keeps of it until its next judgement (``_Seen``), the
``fingerprint`` that tells a change policies can see from one they cannot (a status update), and what the scan
says of a verdict (an ``Announcement`` for the console, the audit log and Slack; the PolicyViolation Event's
message). Values and pure functions only: ``notify`` renders an ``Announcement`` without importing the scan's
I/O (``scanner.py``)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

from gitopsguard.backup import Saved
from gitopsguard.model import KubeObject, ObjectKey
from gitopsguard.policy.live import LiveVerdict, Outcome, Standing


@dataclass(frozen=True)
class Announcement:
    event: str  # violation | resolved | deleted | delete-failed
    key: ObjectKey
    body: KubeObject
    verdict: LiveVerdict
    detail: str = ""
    backup: Saved | None = None  # where a deleted workload was saved, and how to restore it


@dataclass(frozen=True)
class _Seen:
    key: ObjectKey
    body: KubeObject
    verdict: LiveVerdict
    policies: str  # digest of the policy set it was evaluated under
    fingerprint: str  # of everything but status: what policies look at
    standing: Standing  # who manages it, as verified when it was last evaluated
    excepted_until: datetime | None = None  # the first expiry among exceptions covering its findings


def fingerprint(body: KubeObject) -> str:
    """Changes when anything but ``status`` and server bookkeeping changes; a status update (which the
    controllers make all the time) does not make an object worth evaluating again."""
    metadata = body.get("metadata") or {}
    seen = {k: v for k, v in metadata.items() if k not in ("resourceVersion", "managedFields", "generation")}
    if "generation" in metadata:  # the spec is covered by its generation
        return json.dumps([metadata["generation"], seen], sort_keys=True, default=str)
    return json.dumps([body.get("spec"), seen], sort_keys=True, default=str)


def _digest(body: KubeObject) -> str:
    """A short form of ``fingerprint``: one is kept per child, and a cluster holds many Pods."""
    return hashlib.sha256(fingerprint(body).encode()).hexdigest()[:32]


def _event_message(verdict: LiveVerdict) -> str:
    codes = ", ".join(sorted({f"{f.code} ({f.policy})" for f in verdict.findings}))
    when = f"; deleted at {verdict.deadline:%Y-%m-%dT%H:%M:%SZ} unless fixed" if verdict.outcome in (
        Outcome.SCHEDULED, Outcome.DELETE) else ""  # fmt: skip
    held = f"; {verdict.reason}" if verdict.reason else ""
    return f"non-compliant: {codes}{when}{held}"
