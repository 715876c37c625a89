"""``gitopsguard status``, ``get units``, ``suspend unit``, ``resume unit`` and ``reconcile unit``: the units in
the cluster, and the running controller's Units."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from gitopsguard.commands.cli_shared import reports_errors, unit_options, unit_store


@click.command("unit")
@unit_options
@click.option("--timeout", default="2m", show_default=True, help="How long to wait for the controller: 90s, 2m.")
@reports_errors
def reconcile_unit_command(name: str, namespace: str, kubeconfig: Path | None, context: str | None,
                           timeout: str) -> None:  # fmt: skip
    """Ask the running controller to reconcile Unit NAME now, and wait for the result. Exit 0 Ready, 1 not
    Ready, 2 not served within --timeout (or another error)."""
    from gitopsguard.commands.units import print_served, reconcile_unit
    from gitopsguard.model import parse_duration

    wait = parse_duration(timeout)
    if wait is None or not wait.total_seconds():
        raise click.BadParameter(f"{timeout!r} is not a duration like 90s or 2m", param_hint="--timeout")
    served = reconcile_unit(unit_store(kubeconfig, context), namespace, name, wait)
    sys.exit(print_served(f"Unit/{namespace}/{name}", served))


@click.command("status")
@click.option("--unit", default=None, help="Only this unit.")
@click.option("--kubeconfig", type=click.Path(path_type=Path), default=None, help="Default: $KUBECONFIG.")
@click.option("--context", default=None, help="kubeconfig context to use.")
@reports_errors
def status_command(unit: str | None, kubeconfig: Path | None, context: str | None) -> None:
    """Each unit's last applied and attempted commit, last changes and errors. Exit 1 if one is failing."""
    from gitopsguard.commands.status import show_status

    sys.exit(show_status(kubeconfig, context, unit))


@click.group("get")
def get_group() -> None:
    """Show gitopsguard's objects in the cluster."""


@get_group.command("units")
@click.option("-n", "--namespace", default=None, help="Only this namespace (default: default).")
@click.option("-A", "--all-namespaces", is_flag=True, help="Units of every namespace.")
@click.option("--kubeconfig", type=click.Path(path_type=Path), default=None, help="Default: $KUBECONFIG.")
@click.option("--context", default=None, help="kubeconfig context to use.")
@reports_errors
def get_units_command(namespace: str | None, all_namespaces: bool, kubeconfig: Path | None,
                      context: str | None) -> None:  # fmt: skip
    """Each Unit: Ready, its status message, the applied revision, objects, suspended and age."""
    from datetime import UTC, datetime

    from gitopsguard.commands.units import table

    if namespace and all_namespaces:
        raise click.UsageError("give -n NAMESPACE or -A, not both")
    namespace = None if all_namespaces else namespace or "default"
    units = unit_store(kubeconfig, context).list(namespace)
    if not units:
        click.echo(f"No Units found{f' in namespace {namespace}' if namespace else ''}.")
        return
    click.echo(table(units, datetime.now(UTC), all_namespaces=all_namespaces))


@click.group("suspend")
def suspend_group() -> None:
    """Stop reconciling something until it is resumed."""


@suspend_group.command("unit")
@unit_options
@reports_errors
def suspend_unit_command(name: str, namespace: str, kubeconfig: Path | None, context: str | None) -> None:
    """Suspend Unit NAME: the controller changes nothing of it until `gitopsguard resume unit`."""
    from gitopsguard.commands.units import set_suspended

    click.echo(set_suspended(unit_store(kubeconfig, context), namespace, name, True))


@click.group("resume")
def resume_group() -> None:
    """Reconcile again what was suspended."""


@resume_group.command("unit")
@unit_options
@reports_errors
def resume_unit_command(name: str, namespace: str, kubeconfig: Path | None, context: str | None) -> None:
    """Resume Unit NAME: the controller reconciles it again."""
    from gitopsguard.commands.units import set_suspended

    click.echo(set_suspended(unit_store(kubeconfig, context), namespace, name, False))
