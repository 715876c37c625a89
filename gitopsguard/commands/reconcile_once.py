"""``gitopsguard reconcile``: one pass over one unit, printed as one line per object."""

from __future__ import annotations

import hashlib
import os
import re
from collections import Counter
from pathlib import Path

import click

from gitopsguard.cluster import connect
from gitopsguard.cluster.apply import Applier
from gitopsguard.cluster.inventory import InventoryStore
from gitopsguard.errors import SourceError
from gitopsguard.model import Action
from gitopsguard.plan.prune import BrakePolicy
from gitopsguard.reconcile import ReconcileResult, Unit, reconcile
from gitopsguard.source import Credentials, GitSource, SourceSpec

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$")


def run_once(
    *,
    repo: str,
    branch: str,
    path: str,
    unit: str | None,
    namespace: str,
    kubeconfig: Path | None,
    context: str | None,
    workdir: Path | None,
    allow_rewind: bool,
    allow_mass_prune: bool,
) -> int:
    name = unit or unit_name_for(path)
    url = repo if "://" in repo or re.match(r"^[\w.-]+@[\w.-]+:", repo) else Path(repo).resolve().as_uri()
    credentials = Credentials(
        token=os.environ.get("GITOPSGUARD_GIT_TOKEN") or None,
        ssh_key_file=Path(k) if (k := os.environ.get("GITOPSGUARD_GIT_SSH_KEY")) else None,
    )
    source = GitSource(SourceSpec(url, branch), workdir or default_workdir(url, branch), credentials)
    api = connect(kubeconfig, context)
    result = reconcile(
        Unit(name, path, namespace),
        source,
        Applier(api),
        InventoryStore(api),
        brake=BrakePolicy(released=allow_mass_prune),
        allow_rewind=allow_rewind,
    )
    print_result(result)
    if result.error:
        return 2
    return 1 if result.brake else 0


def unit_name_for(path: str) -> str:
    name = re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-") or "root"
    if not _DNS_LABEL.match(name):
        raise SourceError(f"{path}: cannot derive a unit name from this path; give one with --unit")
    return name


def default_workdir(url: str, branch: str) -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gitopsguard" / "sources" / hashlib.sha256(f"{url}#{branch}".encode()).hexdigest()[:16]


def print_result(result: ReconcileResult) -> None:
    for change in result.changes:
        if change.action is not Action.UNCHANGED:
            click.echo(str(change))
    counts = Counter(change.action.value for change in result.changes)
    summary = ", ".join(f"{n} {action}" for action, n in sorted(counts.items())) or "no objects"
    click.echo(f"unit {result.unit} at {(result.revision or '?')[:12]}: {summary}")
    if result.brake:
        click.echo(
            f"mass-prune brake engaged: {result.brake}. Nothing was deleted. Release it with "
            "--allow-mass-prune, or put [gitopsguard: allow-mass-prune] in the commit message.",
            err=True,
        )
    if result.error:
        click.echo(f"error: {result.error}\nThe cluster keeps its last good state.", err=True)
