"""Workloads in opted-in namespaces that Git does not describe: report them, or delete them after a
grace period (pure; the clock and the listing come from the caller).

A namespace opts in through its manifest in Git: ``gitopsguard.io/unmanaged: report | delete`` and
optionally ``gitopsguard.io/unmanaged-grace: 30m`` (default 1h). Only top-level workloads count: objects
with an owner (a ReplicaSet of a Deployment, a Job of a CronJob) are never candidates, and neither is
anything a unit manages. Both are claims a tenant can write (a label, an ownerReference), so the caller
passes ``managed``, which checks them against the cluster (``scan.trust.managed_check``: only a controller
of a kind that really controls the object counts, and only when it is itself managed or tracked here);
without it, the claims alone are taken, as for a dry look at a plan.

A tenant decides how many workloads a namespace holds, and each one tracked costs room in the unit's
inventory: at most ``MAX_TRACKED`` are tracked per namespace (those already tracked first, oldest first).
The rest are still reported, marked untracked, and get no deadline until room frees up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from gitopsguard.model import UNIT_LABEL, KubeObject, ObjectKey, parse_duration
from gitopsguard.plan.prepare import Desired

MODE = "gitopsguard.io/unmanaged"
GRACE = "gitopsguard.io/unmanaged-grace"
DEFAULT_GRACE = timedelta(hours=1)
MAX_TRACKED = 500  # unmanaged workloads tracked per namespace
WORKLOAD_KINDS = (("apps/v1", "Deployment"), ("apps/v1", "StatefulSet"), ("apps/v1", "DaemonSet"),
                  ("batch/v1", "Job"), ("v1", "Pod"), ("apps/v1", "ReplicaSet"),
                  ("v1", "ReplicationController"))  # fmt: skip
# ReplicaSets and ReplicationControllers too: a tenant may make one by hand, and its Pods (which name it)
# would hide it; tracked itself, it goes with its Pods.


@dataclass(frozen=True)
class Policy:
    namespace: str
    delete: bool
    grace: timedelta


@dataclass(frozen=True)
class Verdict:
    key: ObjectKey
    body: KubeObject
    delete: bool
    deadline: datetime | None  # when it will be (or became) deletable; None when only reported
    tracked: bool = True  # False past the namespace's cap: reported, never deleted, first sighting not kept


def untracked_note(namespace: str) -> str:
    return (f"unmanaged: not in Git; not tracked: namespace {namespace} holds more than {MAX_TRACKED} unmanaged "
            "workloads, reported only until tracked ones go")  # fmt: skip


def policies(desired: list[Desired]) -> dict[str, Policy]:
    """Opted-in namespaces, from the Namespace objects in the revision."""
    found = {}
    for d in desired:
        annotations = (d.body.get("metadata") or {}).get("annotations") or {}
        mode = annotations.get(MODE)
        if d.key.kind == "Namespace" and mode in ("report", "delete"):
            found[d.key.name] = Policy(d.key.name, mode == "delete", parse_grace(annotations.get(GRACE)))
    return found


def parse_grace(text: str | None) -> timedelta:
    return parse_duration(text) or DEFAULT_GRACE


def claimed(key: ObjectKey, body: KubeObject) -> bool:
    """Whether the object says it has an owner or a unit (not whether that is true)."""
    metadata = body.get("metadata") or {}
    return bool(metadata.get("ownerReferences")) or UNIT_LABEL in (metadata.get("labels") or {})


def judge(
    live: dict[ObjectKey, KubeObject], policy: Policy, first_seen: dict[ObjectKey, datetime], now: datetime,
    managed: Callable[[ObjectKey, KubeObject], bool] = claimed,
) -> list[Verdict]:  # fmt: skip
    """What to do with each unmanaged workload in one namespace, given when each was first seen."""
    candidates = [(key, body) for key, body in live.items() if not managed(key, body)]
    candidates.sort(key=lambda pair: (pair[0] not in first_seen, first_seen.get(pair[0], now), pair[0]))
    verdicts = []
    for index, (key, body) in enumerate(candidates):
        if index >= MAX_TRACKED:
            verdicts.append(Verdict(key, body, False, None, tracked=False))
            continue
        deadline = first_seen.get(key, now) + policy.grace if policy.delete else None
        verdicts.append(Verdict(key, body, deadline is not None and now >= deadline, deadline))
    return sorted(verdicts, key=lambda verdict: verdict.key)
