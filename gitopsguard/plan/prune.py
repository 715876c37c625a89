"""Which objects may be deleted, and the brake that stops a bad commit from emptying a cluster (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gitopsguard.model import UNIT_LABEL, KubeObject, ObjectKey, Reason
from gitopsguard.plan.prepare import prune_disabled

GUARDED_KINDS = frozenset(
    {("", "Namespace"), ("apiextensions.k8s.io", "CustomResourceDefinition"), ("", "PersistentVolumeClaim")}
)
RELEASE_MARKER = "[gitopsguard: allow-mass-prune]"


@dataclass(frozen=True)
class BrakePolicy:
    max_fraction: float = 0.25
    released: bool = False  # by the operator's flag, or the marker in the commit message


@dataclass(frozen=True)
class PrunePlan:
    delete: tuple[ObjectKey, ...]
    keep: tuple[tuple[ObjectKey, Reason], ...]  # (object, why it is not deleted: NOT_OURS, PRUNE_DISABLED)
    brake: str | None  # why the brake engaged; then nothing is deleted

    @property
    def blocked(self) -> tuple[ObjectKey, ...]:
        return self.delete if self.brake else ()


def plan_prune(
    *,
    inventory: frozenset[ObjectKey],
    desired: frozenset[ObjectKey],
    live: Mapping[ObjectKey, KubeObject],
    unit: str,
    policy: BrakePolicy,
) -> PrunePlan:
    """Delete only what left Git *and* is still labelled ours; brake on too much, or on guarded kinds."""
    delete, keep = [], []
    for key in sorted(inventory - desired):
        body = live.get(key)
        if body is None:
            continue  # already gone
        if (body.get("metadata", {}).get("labels") or {}).get(UNIT_LABEL) != unit:
            keep.append((key, Reason.NOT_OURS))  # adopted elsewhere or edited
        elif prune_disabled(body):
            keep.append((key, Reason.PRUNE_DISABLED))
        else:
            delete.append(key)
    return PrunePlan(tuple(delete), tuple(keep), _brake(delete, inventory, desired, policy))


def _brake(delete: list[ObjectKey], inventory: frozenset[ObjectKey], desired: frozenset[ObjectKey],
           policy: BrakePolicy) -> str | None:  # fmt: skip
    if delete and not desired:  # a deleted path or a broken overlay; no release overrides this
        return f"the revision renders no objects but would delete all {len(delete)}; an empty render never prunes"
    if not delete or policy.released:
        return None
    guarded = [str(k) for k in delete if (k.group, k.kind) in GUARDED_KINDS]
    if guarded:
        return f"it would delete {', '.join(guarded)} (Namespaces, CRDs and PVCs need a release)"
    if len(delete) > policy.max_fraction * len(inventory):
        return f"it would delete {len(delete)} of {len(inventory)} objects, more than {policy.max_fraction:.0%}"
    return None
