"""Which Units the root path vouches for. Pure decisions; the controller acts on them.

The controller is started with the repository and a root path, as ``flux bootstrap`` is. Only the root's
render may declare Units: who may change the root path (its review rules) decides which folders are
reconciled, with which service account and after what. The attacker is a team with write access to its own
folder only. Against them:

- a Unit in a team's render is refused, and with it that render's revision (``minted_units``): a team
  cannot mint a Unit for itself, nor rewrite one (a Unit of the same name in the team's folder);
- a Unit whose path holds, or lies in, the root path or another Unit's path is refused (``units_of_root``):
  a folder is rendered recursively, so a platform Unit over ``apps/`` would apply, with the platform's
  account, whatever a team writes into ``apps/team-a/``; and a Unit over the root path would apply the
  root's Units as a team;
- a Unit object in the cluster that the root did not apply (without the root's unit label, or not in the
  root's inventory) is ignored and reported (``vouched``): whoever can create Unit objects through the API
  cannot start a reconcile with them. The label alone is not enough, as anyone who can write the object
  can write its labels; the inventory is the root's own record, kept in gitopsguard-system;
- a Unit the root applied is served with the spec the root's render gives it, never the live object's
  (``as_served``): whoever can patch the object between two passes of the root cannot point it at another
  folder or account. The live object adds only its generation and a suspension (``suspend unit``), which
  can only make the Unit do less.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from gitopsguard.errors import UnitError
from gitopsguard.model import UNIT_LABEL, Manifest, ObjectKey
from gitopsguard.units.identity import UnitRef, is_dns_label, is_dns_subdomain
from gitopsguard.units.spec import DEFAULTS, UnitDefaults, UnitSpec, is_unit, normal_path, parse_unit


@dataclass(frozen=True)
class Root:
    """The root path (normalised, as ``normal_path`` gives it) and the id of the root unit that applies it."""

    path: str
    unit: str


@dataclass(frozen=True)
class RootUnits:
    """The Units the root declares: those that can be served, and a message for each that cannot."""

    units: tuple[UnitSpec, ...]
    refused: tuple[str, ...] = ()
    refused_units: Mapping[UnitRef, str] = field(default_factory=dict)  # the refused whose name could be read


@dataclass(frozen=True)
class Vouched:
    """Unit objects found in the cluster: those the root applied, and the others with why they are ignored."""

    served: tuple[Mapping[str, Any], ...]
    ignored: tuple[str, ...] = ()


def units_of_root(
    root: Root, manifests: Sequence[Manifest], defaults: UnitDefaults = DEFAULTS, *, namespace: str = ""
) -> RootUnits:
    """The Units of the root's render. A Unit that does not read, or whose path holds or lies in the root
    path or another Unit's path, is refused with the reason; the others are served."""
    specs: list[UnitSpec] = []
    refused: list[str] = []
    by_ref: dict[UnitRef, str] = {}
    for manifest in manifests:
        if not is_unit(manifest.body):
            continue
        try:
            specs.append(parse_unit(manifest, defaults, namespace=namespace))
        except UnitError as error:
            refused.append(str(error))
            ref = _ref_if_readable(manifest.body, namespace)
            if ref is not None:
                by_ref.setdefault(ref, str(error))
    overlaps = overlapping(root, specs)
    refused += overlaps.values()
    by_ref |= overlaps
    return RootUnits(tuple(s for s in specs if s.ref not in overlaps), tuple(refused), by_ref)


def _ref_if_readable(body: Mapping[str, Any], namespace: str) -> UnitRef | None:
    """Which Unit a body that did not read names, when its name and namespace are valid (so that its status
    can say why it is refused)."""
    metadata = body.get("metadata")
    if not isinstance(metadata, Mapping):
        return None
    name, ns = metadata.get("name"), metadata.get("namespace") or namespace
    return UnitRef(str(ns), str(name)) if is_dns_label(ns) and is_dns_subdomain(name) else None


def minted_units(unit: UnitSpec, manifests: Iterable[Manifest]) -> tuple[str, ...]:
    """A message for each Unit object in the render of ``unit`` (not the root): a revision that holds any is
    refused whole, as Units may be declared in the root path only."""
    return tuple(
        f"{m.origin}: {_described(m)}: a Unit may be declared in the root path only; {unit.ref} (path "
        f"{unit.path}) cannot declare one. Ask the platform team to add it to the root path"
        for m in manifests
        if is_unit(m.body)
    )


def vouched(root: Root, live: Iterable[Mapping[str, Any]], inventory: Collection[ObjectKey]) -> Vouched:
    """The live Unit objects the root applied (its unit label, and named in its inventory); the others are
    ignored, each with the reason."""
    served: list[Mapping[str, Any]] = []
    ignored: list[str] = []
    for body in live:
        key = ObjectKey.of(body)
        labels = (body.get("metadata") or {}).get("labels") or {}
        label = labels.get(UNIT_LABEL) if isinstance(labels, Mapping) else None
        if label == root.unit and key in inventory:
            served.append(body)
            continue
        why = "is not in its inventory" if label == root.unit else f"does not carry {UNIT_LABEL}={root.unit}"
        ignored.append(f"{key}: ignored: the root path {root.path} did not apply this Unit (it {why}); declare it "
                       "in the root path, or delete it")  # fmt: skip
    return Vouched(tuple(served), tuple(ignored))


def as_served(rendered: UnitSpec, live: Mapping[str, Any]) -> UnitSpec:
    """The Unit to serve: the root's ``rendered`` spec, suspended when either it or the live object says so,
    with the live object's generation (what its status reports on)."""
    spec = live.get("spec") if isinstance(live.get("spec"), Mapping) else {}
    generation = (live.get("metadata") or {}).get("generation")
    if type(generation) is not int or generation < 0:
        generation = rendered.generation
    return replace(rendered, suspend=rendered.suspend or (spec or {}).get("suspend") is True, generation=generation)


def overlapping(root: Root, specs: Sequence[UnitSpec]) -> dict[UnitRef, str]:
    """Why each Unit whose path holds or lies in the root path or another Unit's path is refused. Each path's
    ancestors are looked up, not every pair compared: a thousand Units cost a few thousand lookups."""
    found: dict[UnitRef, str] = {}
    for spec in specs:
        if _nested(spec.path, root.path):
            found[spec.ref] = (f"{spec.origin}: {spec.ref}: spec.path {spec.path} overlaps the root path {root.path}: "
                               "a Unit's folder may neither hold nor lie in the root path")  # fmt: skip
    by_path: dict[str, list[UnitSpec]] = {}
    for spec in specs:
        by_path.setdefault(spec.path, []).append(spec)
    for spec in sorted(specs, key=lambda s: s.ref):
        other = next((o for a in _ancestors(spec.path) for o in by_path.get(a, ()) if o.ref != spec.ref), None)
        if other is not None:
            for one, two in ((spec, other), (other, spec)):
                found.setdefault(one.ref, f"{one.origin}: {one.ref}: spec.path {one.path} overlaps {two.ref}'s path "
                                 f"{two.path}: folders are rendered whole, so one Unit would apply the other's files "
                                 "with its own account; give each Unit a folder of its own")  # fmt: skip
    return found


def _ancestors(path: str) -> list[str]:
    """``teams/a/b``: ``.``, ``teams``, ``teams/a``, ``teams/a/b`` (the folders that hold it, and itself)."""
    parts = [] if path == "." else path.split("/")
    return ["."] + ["/".join(parts[: i + 1]) for i in range(len(parts))]


def _nested(one: str, other: str) -> bool:
    """Whether either path holds the other (or they are the same folder)."""
    a, b = normal_path(one), normal_path(other)
    if "." in (a, b):
        return True
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


def _described(manifest: Manifest) -> str:
    metadata = manifest.body.get("metadata") if isinstance(manifest.body.get("metadata"), Mapping) else {}
    name, namespace = (metadata or {}).get("name"), (metadata or {}).get("namespace")
    shown = "/".join(ascii(str(x))[1:-1][:253] for x in (namespace, name) if x)
    return f"Unit/{shown}" if shown else "Unit"
