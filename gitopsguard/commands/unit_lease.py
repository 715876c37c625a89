"""A one-off `gitopsguard reconcile` holds its unit's Lease for the pass, so that it never applies or prunes
beside a controller (`run --leader-elect`) that holds the same unit: two writers of one unit would undo each
other's work, and one's prune could delete what the other just applied."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import click
from kubernetes import client

from gitopsguard.cluster import retries
from gitopsguard.cluster.configmaps import ensure_namespace
from gitopsguard.cluster.inventory import CONTROLLER_NAMESPACE
from gitopsguard.cluster.lease import LeaderElector, identity
from gitopsguard.cluster.rest import RawApi
from gitopsguard.errors import ClusterError, LeaseHeldError

PATIENCE = 120.0  # seconds at most spent waiting out a holder that stopped renewing (a lease lasts 15 s)
POLL = 0.5


def lease_name(unit: str) -> str:
    return f"gitopsguard-{unit}"


@contextmanager
def holding_unit(api: client.ApiClient, unit: str, *, patience: float = PATIENCE) -> Iterator[LeaderElector]:
    """Hold the unit's Lease for the body, renewed meanwhile, then release it. A holder that renews it (a
    running controller) is never waited for: LeaseHeldError naming it. A holder that stopped renewing (a
    crashed controller) is waited out, as ``run --leader-elect`` waits, within ``patience`` seconds."""
    raw = RawApi(api, timeout=5, retry=retries.ONCE)  # as the controller's elector: never held past the lease
    ensure_namespace(raw, CONTROLLER_NAMESPACE)
    elector = LeaderElector(raw, CONTROLLER_NAMESPACE, lease_name(unit), me=f"{identity()}-reconcile")
    _take(elector, unit, patience)
    stop, lost = threading.Event(), threading.Event()
    renewing = elector.keep(stop, lost.set)
    try:
        yield elector
    finally:
        stop.set()
        renewing.join(10)  # a renewal under way would otherwise take the lease back just after its release
        if not lost.is_set():
            elector.release()
    if lost.is_set():
        click.echo(f"warning: unit {unit}: the Lease {CONTROLLER_NAMESPACE}/{lease_name(unit)} could not be renewed "
                   "during the pass (the API server was away); check that no controller acted meanwhile (audit "
                   "log)", err=True)  # fmt: skip


def _take(elector: LeaderElector, unit: str, patience: float) -> None:
    """Acquire, or raise LeaseHeldError as soon as the holder is seen renewing (or when patience runs out)."""
    where = f"unit {unit}: Lease {CONTROLLER_NAMESPACE}/{lease_name(unit)}"
    first: tuple[str, str] | None = None
    deadline, unread = time.monotonic() + patience, 0
    while True:
        if elector.try_acquire_or_renew():
            return
        seen = elector.observed
        unread = unread + 1 if seen is None else 0
        if seen is None and unread < 3:  # another one-off created it just before us: read it again
            time.sleep(POLL)
            continue
        if seen is None:  # not readable (RBAC) or not writable: refused, never run without it
            raise ClusterError(f"{where}: cannot be read or taken; grant this account get, create and update on "
                               f"leases in {CONTROLLER_NAMESPACE} (manifests/controller-rbac.yaml)")  # fmt: skip
        first = first or seen
        if seen != first or time.monotonic() > deadline:
            raise LeaseHeldError(f"{where}: held by {seen[0]!r}, which keeps renewing it: a controller "
                                 "reconciles this unit, so a one-off pass would run beside it. Let the controller "
                                 "do it (it reconciles on its interval and on every change), or stop that "
                                 "controller first")  # fmt: skip
        time.sleep(POLL)
