"""What a round of the Units loop (``fleet.py``) serves, derived from the Units as listed, the Units and the
inventory of the root's applied commit, and the round's commit. Pure. A loop at rest derives it once and keeps
it while none of these moved: over 1,000 Units it cost more CPU than the rest of a round at rest (matching the
live Units with the root's, ordering them, reading each one's readiness; bench/units_1000.py)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gitopsguard.cluster.inventory import CONTROLLER_NAMESPACE
from gitopsguard.cluster.units import LiveUnit
from gitopsguard.units import Readiness, UnitRef, UnitSpec, apply_order, readiness_of, unit_id
from gitopsguard.units.order import Order
from gitopsguard.units.policies_path import misplaced_policies
from gitopsguard.units.root import Root, as_served, vouched

Sources = tuple[tuple[LiveUnit, ...], tuple[UnitSpec, ...], frozenset[Any], str]  # listed, root's, inventory, commit


@dataclass(frozen=True, eq=False)
class Standing:
    sources: Sources
    live: dict[UnitRef, LiveUnit]
    served: frozenset[UnitRef]  # the listed Units the root vouches for
    specs: tuple[UnitSpec, ...]  # those the root declares, as served
    refused: Mapping[UnitRef, str]  # unreadable, inside another's folder, or out of order: and why
    order: Order
    ready: dict[UnitRef, Readiness]  # as listed
    declared: tuple[str, ...]  # the ids of every Unit the root's applied commit declares, refused ones too
    # derived from ``specs`` and ``order``, once
    by_ref: dict[UnitRef, UnitSpec] = field(init=False)
    needs: dict[UnitRef, tuple[UnitRef, ...]] = field(init=False)  # each served Unit's dependencies
    ids: frozenset[str] = field(init=False)  # of the Units served
    by_id: dict[str, UnitRef] = field(init=False)
    looked_at: frozenset[UnitRef] = field(init=False)  # looked at in every round: suspended, or in a dependency
    place: dict[UnitRef, int] = field(init=False)  # in ``order``

    def __post_init__(self) -> None:
        derived = {
            "by_ref": {s.ref: s for s in self.specs},
            "needs": {s.ref: tuple(s.depends_on) for s in self.specs},
            "ids": frozenset(s.id for s in self.specs),
            "by_id": {s.id: s.ref for s in self.specs},
            "looked_at": _looked_at(self.specs),
            "place": {r: i for i, r in enumerate(self.order.order)},
        }
        for name, value in derived.items():
            object.__setattr__(self, name, value)  # frozen: set once, here

    @property
    def inventory(self) -> frozenset[Any]:
        return self.sources[2]

    def to_look_at(self, *wanted: Iterable[UnitRef]) -> tuple[UnitRef, ...]:
        """The Units of ``order`` a round looks at, in order: those of ``wanted`` (due, moved, busy) and
        ``looked_at``. Each other one gives its readiness as listed without a turn, as a look would (not due,
        not suspended, no dependency to wait for or to give): over 1,000 Units at rest the looks cost more CPU
        than the few passes of a round (bench/units_1000.py's no-op window)."""
        chosen = set(self.looked_at).union(*wanted)
        return tuple(sorted((r for r in chosen if r in self.place), key=self.place.__getitem__))


def stand(
    root: Root, sources: Sources, refused: Mapping[UnitRef, str], policies_path: str | None
) -> tuple[Standing, tuple[str, ...]]:
    """The standing of ``sources``, and the notes on listed Units the root does not vouch for."""
    live_units, specs, inventory, commit = sources
    found = vouched(root, [u.body for u in live_units], inventory)
    live = {UnitRef(u.namespace, u.name): u for u in live_units}
    served = frozenset(UnitRef(*_where(body)) for body in found.served)
    as_served_now = tuple(as_served(s, live[s.ref].body) for s in specs if s.ref in served)
    inside = misplaced(as_served_now, root.path, policies_path)
    order = apply_order(tuple(s for s in as_served_now if s.ref not in inside))
    ready = {ref: readiness_of(u.status, u.generation, commit) for ref, u in live.items() if ref in served}
    standing = Standing(sources, live, served, as_served_now, {**refused, **inside, **order.refused}, order, ready,
                        (*(s.id for s in specs), *(unit_id(r.namespace, r.name) for r in refused)))  # fmt: skip
    return standing, tuple(found.ignored)


def _looked_at(specs: Iterable[UnitSpec]) -> frozenset[UnitRef]:
    looked = set[UnitRef]()
    for spec in specs:
        if spec.suspend or spec.depends_on:
            looked.add(spec.ref)
            looked.update(spec.depends_on)
    return frozenset(looked)


def misplaced(specs: tuple[UnitSpec, ...], root_path: str, policies_path: str | None) -> dict[UnitRef, str]:
    """The Units refused for where they point before any is ordered: into the controller's namespace, or a
    ``policiesPath`` where it may not be (``units/policies_path.py``)."""
    return refused_targets(specs) | misplaced_policies(root_path, policies_path, specs)


def refused_targets(specs: Iterable[UnitSpec]) -> dict[UnitRef, str]:
    """Units whose objects would land in the controller's own namespace by default (``targetNamespace``, else
    their own): refused, as ``run --namespace`` is. Its inventories, state, Leases and trust file live there,
    and a folder's objects that name no namespace would be written among them, as the Unit's account."""
    return {
        s.ref: f"{s.origin}: {s.ref}: spec.targetNamespace {CONTROLLER_NAMESPACE} (or a Unit in it): the "
        "controller's own namespace cannot receive a Unit's objects (its state lives there); choose another"
        for s in specs
        if (s.target_namespace or s.ref.namespace) == CONTROLLER_NAMESPACE
    }


def _where(body: Mapping[str, Any]) -> tuple[str, str]:
    metadata = body.get("metadata") or {}
    return str(metadata.get("namespace") or ""), str(metadata.get("name") or "")
