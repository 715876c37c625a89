"""``gitopsguard diff``: what a reconcile would change, checked by the server, with Secrets masked."""

from __future__ import annotations

import click

from gitopsguard.cluster.apply import Applier, OwnedSnapshot, Refused
from gitopsguard.cluster.inventory import Inventory, InventoryStore
from gitopsguard.commands.reconcile_once import ReconcileOptions, build_parts
from gitopsguard.errors import ApplyError
from gitopsguard.model import Manifest, ObjectKey
from gitopsguard.plan.diff import has_changed
from gitopsguard.plan.prepare import Desired, prepare, split_first
from gitopsguard.plan.prune import RELEASE_MARKER, BrakePolicy
from gitopsguard.plan.show import unified
from gitopsguard.render import render
from gitopsguard.sync import plan_pruning


def run_diff(o: ReconcileOptions) -> int:
    """Print the diff; exit 0 when nothing would change, 1 when something would, 2 on errors."""
    unit, source, api = build_parts(o)
    applier, inventory = Applier(api, acting_as=o.acting_as()), InventoryStore(api).load(unit.name)
    applier.confirm_acting_as(unit.name)
    revision = source.fetch(last_applied=inventory.last_applied, allow_rewind=o.allow_rewind)
    manifests = render(revision.checkout, unit.path, settings=unit.render_settings).manifests
    new_kinds = _crd_kinds(manifests)
    checkable = tuple(m for m in manifests if (m.key.group, m.key.kind) not in new_kinds)
    unchecked = [m for m in manifests if (m.key.group, m.key.kind) in new_kinds]
    desired = _prepare(checkable, unit.name, unit.default_namespace, applier)
    owned = OwnedSnapshot(applier, unit.name)
    live = owned.of((d.api_version, d.key) for d in desired)
    new_namespaces = {d.key.name for d in desired if d.key.kind == "Namespace" and d.key not in live}
    changes, problems = 0, []
    for d, result in zip(desired, applier.dry_run_each(desired), strict=True):
        current = live.get(d.key) or applier.get(d)
        if isinstance(result, Refused):
            if d.key.namespace in new_namespaces:
                click.echo(f"+ {d.key} would be created in the new namespace {d.key.namespace} (checked on apply)")
                changes += 1
            else:
                problems.append(str(result))
        elif has_changed(result, current):
            click.echo(unified(str(d.key), d.origin, current, result), nl=False)
            changes += 1
    for m in unchecked:
        click.echo(f"+ {m.key} would be applied; its kind comes with this revision's CRD (checked on apply)")
        changes += 1
    keys = frozenset([*(d.key for d in desired), *(m.key for m in unchecked)])
    released = o.allow_mass_prune or RELEASE_MARKER in revision.message
    changes += _show_prune(unit.name, inventory, keys, owned, released)
    if problems:
        raise ApplyError(f"the server would refuse {len(problems)} objects", tuple(problems))
    click.echo(f"unit {unit.name} at {revision.commit[:12]}: {changes} change(s)", err=True)
    return 1 if changes else 0


def _prepare(manifests: tuple[Manifest, ...], unit: str, namespace: str, applier: Applier) -> list[Desired]:
    first, rest = split_first(manifests)
    return [*prepare(first, unit=unit, default_namespace="", namespaced=lambda _: False),
            *prepare(rest, unit=unit, default_namespace=namespace, namespaced=applier.namespaced)]  # fmt: skip


def _crd_kinds(manifests: tuple[Manifest, ...]) -> set[tuple[str, str]]:
    """(group, kind) of every CustomResourceDefinition in the revision."""
    kinds = set()
    for m in manifests:
        if m.key.kind == "CustomResourceDefinition":
            spec = m.body.get("spec") or {}
            kinds.add((str(spec.get("group", "")), str((spec.get("names") or {}).get("kind", ""))))
    return kinds


def _show_prune(
    unit: str, inventory: Inventory, keys: frozenset[ObjectKey], owned: OwnedSnapshot, released: bool
) -> int:
    """Print what the prune would delete (or hold back); returns how many."""
    plan, _ = plan_pruning(unit, inventory, keys, owned, BrakePolicy(released=released))
    for key in plan.delete:
        click.echo(f"- {key} would be deleted" + (" (held back by the mass-prune brake)" if plan.brake else ""))
    if plan.brake:
        click.echo(f"  mass-prune brake would engage: {plan.brake}")
    return len(plan.delete)
