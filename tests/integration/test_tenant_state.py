"""A tenant with one namespace cannot break the state of other teams or stop a unit: hostile names and
volumes of hand-made workloads, on the real API server."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from gitopsguard.cluster.apply import Applier
from gitopsguard.cluster.inventory import InventoryStore
from gitopsguard.model import Action
from gitopsguard.reconcile import ReconcileResult, Unit, reconcile
from gitopsguard.source import GitSource, SourceSpec
from tests.gitrepo import Upstream

pytestmark = pytest.mark.integration

OPTED_IN = """\
apiVersion: v1
kind: Namespace
metadata:
  name: {namespace}
  annotations: {{gitopsguard.io/unmanaged: {mode}, gitopsguard.io/unmanaged-grace: 1s}}
"""
CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  value: '{value}'\n"


@dataclass
class Tenant:
    upstream: Upstream
    namespace: str
    api: client.ApiClient
    workdir: Path

    def commit(self, mode: str, value: str) -> str:
        self.upstream.write("apps/ns.yaml", OPTED_IN.format(namespace=self.namespace, mode=mode))
        self.upstream.write("apps/settings.yaml", CONFIGMAP.format(name="settings", value=value))
        return self.upstream.commit()

    def run(self, backups: Path | None) -> ReconcileResult:
        unit = Unit(self.namespace, "apps", default_namespace=self.namespace, backup_dir=backups)
        source = GitSource(SourceSpec(self.upstream.url), self.workdir)
        return reconcile(unit, source, Applier(self.api), InventoryStore(self.api))

    def pod(self, name: str) -> None:
        container = client.V1Container(name="c", image="busybox")
        spec = client.V1PodSpec(containers=[container], automount_service_account_token=False)
        body = client.V1Pod(metadata=client.V1ObjectMeta(name=name), spec=spec)
        client.CoreV1Api(self.api).create_namespaced_pod(self.namespace, body)

    def live_pods(self) -> set[str]:
        pods = client.CoreV1Api(self.api).list_namespaced_pod(self.namespace).items
        return {p.metadata.name for p in pods if not p.metadata.deletion_timestamp}

    def setting(self) -> str:
        return str(client.CoreV1Api(self.api).read_namespaced_config_map("settings", self.namespace).data["value"])


@pytest.fixture
def tenant(admin_api: client.ApiClient, namespace: str, tmp_path: Path) -> Iterator[Tenant]:
    core = client.CoreV1Api(admin_api)
    deadline = time.monotonic() + 30  # pods are refused until the controller-manager makes the default account
    while not any(sa.metadata.name == "default" for sa in core.list_namespaced_service_account(namespace).items):
        assert time.monotonic() < deadline, "the default ServiceAccount never appeared"
        time.sleep(0.1)
    yield Tenant(Upstream(tmp_path / "git"), namespace, admin_api, tmp_path / "gg")


def _change(result: ReconcileResult, name: str) -> tuple[Action, str]:
    (change,) = [c for c in result.changes if c.key.kind == "Pod" and c.key.name == name]
    return change.action, change.detail


def test_an_unmanaged_workload_with_a_240_character_name_is_backed_up_and_deleted(
    tenant: Tenant, tmp_path: Path
) -> None:
    long_name = "x" * 240
    tenant.commit("delete", "1")
    tenant.pod(long_name)
    tenant.run(tmp_path / "backups")  # first seen
    time.sleep(1.2)  # past the grace period
    result = tenant.run(tmp_path / "backups")
    assert result.error is None, result.error
    action, detail = _change(result, long_name)
    assert action is Action.DELETED and "backup:" in detail
    (saved,) = (tmp_path / "backups" / tenant.namespace / tenant.namespace).glob("Pod-*.yaml")
    assert yaml.safe_load(saved.read_text())["metadata"]["name"] == long_name
    assert long_name not in tenant.live_pods()


def test_a_failed_backup_holds_that_workload_alone_and_never_fails_the_unit_pass(
    tenant: Tenant, tmp_path: Path
) -> None:
    unwritable = tmp_path / "backups"
    unwritable.write_text("a file where the backup directory should be")  # every backup fails (even as root)
    tenant.commit("delete", "1")
    tenant.pod("stray")
    tenant.run(unwritable)  # first seen
    time.sleep(1.2)  # past the grace period
    first = tenant.run(unwritable)
    assert first.error is None, first.error
    action, detail = _change(first, "stray")
    assert action is Action.FAILED and "cannot back up" in detail and "kept, not deleted" in detail
    assert "stray" in tenant.live_pods()
    tenant.commit("delete", "2")  # the next commit is applied and stays applied, not put back
    second = tenant.run(unwritable)
    assert second.error is None, second.error
    assert tenant.setting() == "2" and "stray" in tenant.live_pods()
