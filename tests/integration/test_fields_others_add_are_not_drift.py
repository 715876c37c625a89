"""A field another writer adds beside ours is not drift; a field we apply that someone else writes is.

The controller-manager's token controller writes ``secrets`` into every ServiceAccount after gitopsguard created
it: the object's resourceVersion moves, but nothing gitopsguard applies changed, so a pass at rest must neither
dry-run nor apply it (it did, every pass, for ever: 1,000 dry runs a no-op cycle at 1,000 Units, bench/README.md).
A tenant who edits a field Git sets must still be repaired at the next pass."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from kubernetes import client

from gitopsguard.cluster.apply import Applier, Prepared, Refused
from gitopsguard.cluster.inventory import InventoryStore
from gitopsguard.cluster.rest import Written
from gitopsguard.model import Action, KubeObject, ObjectKey
from gitopsguard.reconcile import Unit, reconcile
from gitopsguard.source import GitSource, SourceSpec
from tests.gitrepo import Upstream
from tests.kube import meta
from tests.waiting import eventually

pytestmark = pytest.mark.integration
FILES = {
    "apps/sa.yaml": "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: robot}\n"
    "automountServiceAccountToken: false\n",
    "apps/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {v: '1'}\n",
}


class CountingApplier(Applier):
    """The real applier, counting the objects it dry-runs and applies."""

    def __init__(self, api: client.ApiClient) -> None:
        super().__init__(api)
        self.dry_runs: list[ObjectKey] = []
        self.applies: list[ObjectKey] = []

    def dry_run(self, desired: Sequence[Prepared], compare: object) -> dict[ObjectKey, KubeObject]:
        self.dry_runs += [d.key for d in desired]
        return super().dry_run(desired, compare)  # type: ignore[arg-type]

    def apply(self, desired: Sequence[Prepared]) -> list[Refused | Written]:
        self.applies += [d.key for d in desired]
        return super().apply(desired)


@pytest.fixture
def applied(admin_api: client.ApiClient, namespace: str, tmp_path: Path) -> tuple[Unit, GitSource, CountingApplier]:
    """The two objects applied by one pass, and the ServiceAccount given its token by the controller-manager."""
    upstream = Upstream(tmp_path / "git")
    for path, text in FILES.items():
        upstream.write(path, text)
    upstream.commit()
    unit, source = Unit(namespace, "apps", namespace), GitSource(SourceSpec(upstream.url), tmp_path / "gg")
    applier = CountingApplier(admin_api)
    assert reconcile(unit, source, applier, InventoryStore(admin_api)).error is None
    core = client.CoreV1Api(admin_api)
    eventually(lambda: bool(core.read_namespaced_service_account("robot", namespace).secrets), 60, every=0.2)
    applier.dry_runs.clear()
    applier.applies.clear()
    return unit, source, applier


def test_a_serviceaccount_the_token_controller_wrote_secrets_into_is_neither_dry_run_nor_applied_again(
    admin_api: client.ApiClient, applied: tuple[Unit, GitSource, CountingApplier]
) -> None:
    unit, source, applier = applied
    for _ in range(2):
        result = reconcile(unit, source, applier, InventoryStore(admin_api))
        assert result.error is None
        assert {c.action for c in result.changes} == {Action.UNCHANGED}
    assert applier.dry_runs == [], "the token controller's secrets are no field gitopsguard applies"
    assert applier.applies == []


def test_an_annotation_another_manager_adds_beside_ours_is_neither_dry_run_nor_applied(
    admin_api: client.ApiClient, namespace: str, applied: tuple[Unit, GitSource, CountingApplier]
) -> None:
    unit, source, applier = applied
    core = client.CoreV1Api(admin_api)
    note = {"metadata": {"annotations": {"example.com/note": "kept"}, "labels": {"team": "a"}}}
    core.patch_namespaced_config_map("settings", namespace, note, field_manager="another-controller")
    before = meta(core.read_namespaced_config_map("settings", namespace)).resource_version
    result = reconcile(unit, source, applier, InventoryStore(admin_api))
    assert result.error is None and {c.action for c in result.changes} == {Action.UNCHANGED}
    assert applier.dry_runs == [] and applier.applies == []
    assert meta(core.read_namespaced_config_map("settings", namespace)).resource_version == before


def test_a_tenants_edit_of_a_field_git_sets_is_still_repaired(
    admin_api: client.ApiClient, namespace: str, applied: tuple[Unit, GitSource, CountingApplier]
) -> None:
    unit, source, applier = applied
    core = client.CoreV1Api(admin_api)
    core.patch_namespaced_config_map("settings", namespace, {"data": {"v": "tenant"}}, field_manager="kubectl-edit")
    result = reconcile(unit, source, applier, InventoryStore(admin_api))
    drifted = [c for c in result.changes if c.action is Action.CONFIGURED]
    assert [c.key.name for c in drifted] == ["settings"], result.changes
    assert core.read_namespaced_config_map("settings", namespace).data == {"v": "1"}


def test_a_tenants_edit_of_a_serviceaccount_field_git_sets_is_repaired_beside_the_token_controllers_secrets(
    admin_api: client.ApiClient, namespace: str, applied: tuple[Unit, GitSource, CountingApplier]
) -> None:
    """The token controller's write is let be; a tenant's write to a field Git sets, on the same object, is not
    (the Update takes the field's ownership from gitopsguard: the desired body, not gitopsguard's own
    managedFields entry, says what is Git's)."""
    unit, source, applier = applied
    core = client.CoreV1Api(admin_api)
    body = {"automountServiceAccountToken": True}
    core.patch_namespaced_service_account("robot", namespace, body, field_manager="kubectl-edit")
    result = reconcile(unit, source, applier, InventoryStore(admin_api))
    assert "robot" in [k.name for k in applier.dry_runs]
    assert [c.key.name for c in result.changes if c.action is Action.CONFIGURED] == ["robot"]
    assert core.read_namespaced_service_account("robot", namespace).automount_service_account_token is False
