"""Deletions the mass-prune brake held back are the inventory's own state (``Inventory.brake``), not words in
its last error: a held unit is never "at rest", so the operator's release (``--allow-mass-prune``) on the same
commit prunes, and the pass after it is at rest again."""

from __future__ import annotations

from pathlib import Path

import pytest
from kubernetes import client

from gitopsguard.cluster.apply import Applier
from gitopsguard.cluster.inventory import InventoryStore
from gitopsguard.model import Action
from gitopsguard.plan.prune import BrakePolicy
from gitopsguard.reconcile import ReconcileResult, Unit, reconcile
from gitopsguard.source import GitSource, SourceSpec
from tests.gitrepo import Upstream

pytestmark = pytest.mark.integration


def test_the_operators_release_on_the_same_commit_prunes_what_the_brake_held(
    admin_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    upstream = Upstream(tmp_path / "git")
    for name in "abcd":
        upstream.write(f"apps/{name}.yaml", f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n")
    upstream.commit()
    store = InventoryStore(admin_api)

    def run(*, released: bool = False) -> ReconcileResult:
        source = GitSource(SourceSpec(upstream.url), tmp_path / "gg")
        unit = Unit(namespace, "apps", default_namespace=namespace)
        return reconcile(unit, source, Applier(admin_api), store, brake=BrakePolicy(released=released))

    assert run().error is None
    for name in "bcd":
        upstream.remove(f"apps/{name}.yaml")
    upstream.commit("remove three")
    held = run()
    assert held.brake is not None and "3 of 4" in held.brake
    assert store.load(namespace).brake == held.brake and store.load(namespace).last_error == ""
    released = run(released=True)
    assert released.brake is None
    assert sorted(str(c.key) for c in released.changes if c.action is Action.DELETED) == [
        f"ConfigMap/{namespace}/{name}" for name in "bcd"
    ]
    assert store.load(namespace).brake == ""
    assert all(c.action is Action.UNCHANGED for c in run().changes)  # at rest again
