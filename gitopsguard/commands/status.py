"""``gitopsguard status``: each unit's last applied and attempted commit, its last changes and errors."""

from __future__ import annotations

import textwrap
from pathlib import Path

import click

from gitopsguard.cluster import connect
from gitopsguard.cluster.inventory import CONTROLLER_NAMESPACE, Inventory, InventoryStore
from gitopsguard.source import redact_urls


def show_status(kubeconfig: Path | None, context: str | None, unit: str | None) -> int:
    """Print every unit (or one); exit 1 when one is failing or holding deletions back."""
    units = InventoryStore(connect(kubeconfig, context)).units()
    if unit is not None:
        units = {name: inventory for name, inventory in units.items() if name == unit}
    if not units:
        what = f"unit {unit!r} has not" if unit else "no unit has"
        click.echo(f"{what} been reconciled in this cluster yet (no inventory in {CONTROLLER_NAMESPACE}).")
        return 0 if unit is None else 1
    healthy = True
    for name, inventory in units.items():
        state = unit_state(inventory)
        healthy &= state == "ready"
        click.echo(describe(name, inventory, state))
    return 0 if healthy else 1


def unit_state(inventory: Inventory) -> str:
    """FAILING when the last pass failed; else ready, saying so when the brake held deletions back. Told by the
    inventory's fields, never by an error's words (a file in Git may be named to begin like the brake's)."""
    if inventory.last_error:
        return "FAILING"
    return "ready, deletions held by the mass-prune brake" if inventory.brake else "ready"


def describe(name: str, inventory: Inventory, state: str) -> str:
    lines = [
        f"unit {name}: {state}",
        f"  last applied:   {inventory.last_applied or '-'}",
        f"  last attempted: {inventory.last_attempted or '-'}",
        f"  objects owned:  {len(inventory.entries)}",
        f"  reviewed:       {inventory.reviewed or '- (review mode off, or nothing applied since it was turned on)'}",
    ]
    if inventory.brake:
        lines.append(f"  deletions held: mass-prune brake: {inventory.brake}")
    if inventory.last_error:
        lines.append("  last error:\n" + textwrap.indent(inventory.last_error, "    "))
    if inventory.last_changes:
        lines.append("  last changes:\n" + textwrap.indent(inventory.last_changes, "    "))
    return redact_urls("\n".join(lines))  # an inventory saved by an older version may hold a URL's login
