"""Units that left the root path: which retire, what retiring them deletes, and the brake over all of them (pure).

A Unit whose file leaves the root path is pruned by the root (its object goes); retiring it garbage-collects
what it applied, as Flux's finalizer does for a deleted Kustomization (fluxcd/kustomize-controller,
docs/spec/v1/kustomizations.md, "Prune" and "Deletion policy": objects are deleted when ``prune`` is true and
orphaned when it is false; its ``finalize`` skips the deletion of a suspended Kustomization too). Against
whom:

- **only the root's applied commit decides** (``retiring``): a Unit retires when that commit no longer declares
  it (neither served nor refused by name), the root no longer owns its object and no Unit object of that name
  is in the cluster. A Unit deleted by hand while its file is in Git is still declared (the root re-applies
  it); a root with no applied commit, or whose render holds a Unit whose name cannot be read, retires nothing;
  a Unit object the root's own brake held back keeps its Unit waiting;
- **a bad commit that removes every Unit** (``retirement_brake``): what all retiring Units would delete is
  counted together against everything the root's Units own, with the single unit's rules (a fraction, and
  Namespaces, CRDs and PVCs), released only as a single unit's brake is;
- **as whom**: a Unit's record (``Served``) is what the root's render last gave it (its account, ``prune``,
  ``suspend``), never the live object's, which whoever may patch it could point at another account;
- **a Unit renamed or moved, its new name served later or on another replica** (``unclaimed``): an object
  that a Unit the applied commit declares claims (its inventory names it, or its folder at that commit does:
  ``claimed_by_render``) is kept, whatever its label says, for that Unit's pass to take over: a rename deletes
  nothing its new name declares, and no retirement deletes what another declared Unit applied or will apply.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from gitopsguard.model import KubeObject, Manifest, ObjectKey, Reason
from gitopsguard.plan.prune import GUARDED_KINDS, BrakePolicy, plan_prune
from gitopsguard.units.identity import UnitRef, is_dns_label, is_dns_subdomain, unit_id
from gitopsguard.units.root import RootUnits
from gitopsguard.units.spec import DEFAULTS, GROUP, UnitSpec

_SHOWN = 10  # Units named in a brake's message; the rest are counted
Claimed = Mapping[ObjectKey, UnitRef]  # an object a Unit the root's applied commit declares claims, and which


@dataclass(frozen=True)
class Served:
    """What retiring a Unit needs of it, as the root last served it: kept apart from the Unit object, which the
    root's prune deletes first."""

    ref: UnitRef
    path: str
    account: str | None  # spec.serviceAccountName; None: the operator's default account
    prune: bool
    suspend: bool
    report_only: bool
    origin: str  # where the root declared it (file:line), for messages

    @property
    def id(self) -> str:
        return unit_id(self.ref.namespace, self.ref.name)

    @property
    def orphans(self) -> bool:
        """Whether retiring leaves its objects in place: ``prune: false`` or suspended, as Flux does; and
        ``reportOnly``, whose team asked that nothing be written."""
        return not self.prune or self.suspend or self.report_only

    def spec(self) -> UnitSpec:
        """A spec with this record's identity and account (what ``fleet.accounts`` reads)."""
        return UnitSpec(self.ref, self.origin, self.path, DEFAULTS.interval, service_account_name=self.account,
                        suspend=self.suspend, report_only=self.report_only, prune=self.prune)  # fmt: skip

    def row(self) -> list[object]:
        return [self.ref.namespace, self.ref.name, self.path, self.account, self.prune, self.suspend,
                self.report_only, self.origin]  # fmt: skip

    @classmethod
    def of_row(cls, row: Any) -> Served:
        """A stored row, checked as strictly as a spec (ValueError otherwise): the ConfigMap is only as trusted
        as whoever may edit it."""
        if not isinstance(row, list) or len(row) != 8:
            raise ValueError(f"a record must be a list of 8 values, not {ascii(row)[:80]}")
        namespace, name, path, account, prune, suspend, report_only, origin = row
        if not is_dns_label(namespace) or not is_dns_subdomain(name) or not isinstance(path, str):
            raise ValueError(f"a record names no Unit: {ascii(row)[:80]}")
        if account is not None and not is_dns_subdomain(account):
            raise ValueError(f"Unit/{namespace}/{name}: account {ascii(account)[:80]} is not a name")
        if any(type(flag) is not bool for flag in (prune, suspend, report_only)) or not isinstance(origin, str):
            raise ValueError(f"Unit/{namespace}/{name}: prune, suspend and reportOnly must be booleans, origin a text")
        return cls(UnitRef(namespace, name), path, account, prune, suspend, report_only, origin)


def served_of(spec: UnitSpec, *, report_only: bool = False) -> Served:
    """The record of a Unit as served (the root's spec, suspended when either it or the live object says so);
    ``report_only``: the operator's, for every Unit."""
    return Served(spec.ref, spec.path, spec.service_account_name, spec.prune, spec.suspend,
                  spec.report_only or report_only, spec.origin)  # fmt: skip


def recorded(
    records: Mapping[UnitRef, Served], served: Iterable[UnitSpec], *, report_only: bool = False
) -> dict[UnitRef, Served]:
    """The records that ``served`` adds or changes (empty when all are as recorded)."""
    return {s.ref: r for s in served if records.get(s.ref) != (r := served_of(s, report_only=report_only))}


@dataclass(frozen=True)
class Declared:
    """What the root's applied commit declares: every Unit it names (served or refused by name), and whether a
    Unit of its render could not be named at all."""

    commit: str | None
    refs: frozenset[UnitRef]
    unreadable: bool = False


def declared_of(declared: tuple[str, RootUnits] | None) -> Declared:
    """The Units of ``(commit, its Units)`` as the loop keeps them; None: the root has no applied commit."""
    if declared is None:
        return Declared(None, frozenset())
    commit, units = declared
    refs = frozenset({u.ref for u in units.units} | set(units.refused_units))
    # a refusal without a name: some Unit of the render is known to nobody, so none may be taken as gone
    return Declared(commit, refs, unreadable=len(units.refused) > len(units.refused_units))


@dataclass(frozen=True)
class Retiring:
    """The recorded Units that retire now, and why each other one gone from the root path waits."""

    units: tuple[Served, ...]
    waiting: tuple[str, ...] = ()


def gone(records: Mapping[UnitRef, Served], declared: Declared) -> tuple[Served, ...]:
    """The recorded Units the root's applied commit does not declare (cheap: no request needed)."""
    return tuple(sorted((s for ref, s in records.items() if ref not in declared.refs), key=lambda s: s.ref))


def retiring(
    records: Mapping[UnitRef, Served], declared: Declared, root_owns: Collection[ObjectKey], live: Collection[UnitRef],
    *, root_path: str,
) -> Retiring:  # fmt: skip
    """Which recorded Units retire: not declared by the root's applied commit, their object neither owned by the
    root nor in the cluster. Nothing retires without an applied commit, or while a Unit cannot be named."""
    candidates = gone(records, declared)
    if not candidates:
        return Retiring(())
    where = f"the root path {root_path}"
    if declared.commit is None:
        return Retiring((), (f"{where} has no applied commit: no Unit retires until it has one",))
    if declared.unreadable:
        return Retiring((), (f"{where} at {declared.commit[:12]} declares a Unit whose name cannot be read: no Unit "
                             "retires until it reads (see the refusal above)",))  # fmt: skip
    owned = {(k.namespace, k.name) for k in root_owns if k.group == GROUP and k.kind.lower() in ("unit", "units")}
    ready, waiting = [], []
    for unit in candidates:
        if (unit.ref.namespace, unit.ref.name) in owned or unit.ref in live:
            waiting.append(f"{unit.ref}: left {where} at {declared.commit[:12]} but its Unit object is still in the "
                           "cluster (the root's prune held it back, or it was made by hand): it retires once the "
                           "object is gone")  # fmt: skip
        else:
            ready.append(unit)
    return Retiring(tuple(ready), tuple(waiting))


@dataclass(frozen=True)
class RetirePlan:
    """What retiring one Unit deletes, what it keeps and why (``NOT_OURS``, ``PRUNE_DISABLED``), how many
    objects its inventory names, and which of its objects a declared Unit claims (kept, and waited for: the
    retirement ends once that Unit's pass has taken them over, or they are no longer claimed)."""

    unit: Served
    delete: tuple[ObjectKey, ...]
    keep: tuple[tuple[ObjectKey, Reason], ...]
    owned: int
    claimed: tuple[tuple[ObjectKey, UnitRef], ...] = ()


def plan_retirement(unit: Served, inventory: frozenset[ObjectKey], live: Mapping[ObjectKey, KubeObject]) -> RetirePlan:
    """Delete what the Unit's inventory names and is still labelled the Unit's (not marked prune: disabled);
    nothing when it orphans its objects. ``live`` holds what carries its label now."""
    if unit.orphans:
        return RetirePlan(unit, (), (), len(inventory))
    # plan_prune's own brake judges one unit's revision (an empty render never prunes); a retirement renders
    # nothing by definition and is judged, with all the others, by ``retirement_brake``
    plan = plan_prune(inventory=inventory, desired=frozenset(), live=live, unit=unit.id, policy=BrakePolicy())
    return RetirePlan(unit, plan.delete, plan.keep, len(inventory))


def claimed_by_render(spec: UnitSpec, manifests: Iterable[Manifest]) -> dict[ObjectKey, UnitRef]:
    """The objects a declared Unit's folder names, as its pass would place them. Whether a kind is namespaced
    is the API server's to say, so each is claimed both in its namespace (else the Unit's default one) and
    cluster-wide: claiming too much only keeps an object."""
    default = spec.target_namespace or spec.ref.namespace
    claimed: dict[ObjectKey, UnitRef] = {}
    for manifest in manifests:
        key = manifest.key
        claimed[replace(key, namespace=key.namespace or default)] = spec.ref
        claimed[replace(key, namespace="")] = spec.ref
    return claimed


def unclaimed(plan: RetirePlan, claimed: Claimed) -> RetirePlan:
    """``plan`` keeping what a declared Unit claims (``RetirePlan.claimed``): that Unit's pass takes it over, on
    this replica or another, now or later; deleting it would only have that pass create it again (new uid, Pods
    restarted), or delete what another team's Unit applied."""
    kept = tuple((k, claimed[k]) for k in plan.delete if claimed.get(k, plan.unit.ref) != plan.unit.ref)
    if not kept:
        return plan
    taken = {k for k, _ in kept}
    return replace(plan, delete=tuple(k for k in plan.delete if k not in taken), claimed=kept)


def claims_text(plan: RetirePlan) -> str:
    """The objects of ``plan`` another Unit claims, and whose, for a note: ten named, the rest counted."""
    named = ", ".join(f"{key} (by {ref})" for key, ref in plan.claimed[:_SHOWN])
    return named + (f" and {len(plan.claimed) - _SHOWN} more" if len(plan.claimed) > _SHOWN else "")


def retirement_brake(plans: Sequence[RetirePlan], owned: int, policy: BrakePolicy, *, root_path: str) -> str | None:
    """Why retiring these Units together must wait (None: it may go): ``owned`` is what all the root's Units
    own (their inventories), the retiring ones included."""
    deleting = [p for p in plans if p.delete]
    total = sum(len(p.delete) for p in deleting)
    if not total or policy.released:
        return None
    named = ", ".join(f"{p.unit.ref} ({len(p.delete)})" for p in deleting[:_SHOWN])
    more = f" and {len(deleting) - _SHOWN} more" if len(deleting) > _SHOWN else ""
    what = f"retiring {len(deleting)} Units that left the root path {root_path}, {named}{more},"
    guarded = [str(k) for p in deleting for k in p.delete if (k.group, k.kind) in GUARDED_KINDS]
    if guarded:
        shown = ", ".join(guarded[:_SHOWN]) + (f" and {len(guarded) - _SHOWN} more" if len(guarded) > _SHOWN else "")
        return f"{what} would delete {shown} (Namespaces, CRDs and PVCs need a release)"
    if total > policy.max_fraction * owned:
        return (f"{what} would delete {total} of the {owned} objects the root path's Units own, more than "
                f"{policy.max_fraction:.0%}")  # fmt: skip
    return None
