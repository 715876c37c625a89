"""Backups that outlive the Pod, on the real API server: the live scan's deletion is one commit in a backup
repository (a bare repository as the remote), whose file restores the Deployment with `kubectl apply`, and
whose notice says where the backup is and how to restore it; a backup that cannot be pushed deletes nothing."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from kubernetes import client

from gitopsguard.backup.gitrepo import GitBackups, GitBackupSpec
from gitopsguard.notify.notices import from_announcements
from gitopsguard.policy import parse_policies
from gitopsguard.source import Credentials
from tests.gitrepo import bare_remote, git
from tests.integration.conftest import LiveCluster
from tests.integration.test_live_scan import POLICIES, Scan, deployment, scan
from tests.kube import as_model, meta, name_of
from tests.kubectl import kubectl
from tests.waiting import eventually

pytestmark = pytest.mark.integration
__all__ = ["scan"]  # the live scan's fixture, used here with a backup repository


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    return bare_remote(tmp_path / "backups.git")


def test_a_live_scan_deletion_is_one_backup_commit_whose_file_restores_the_deployment(
    scan: Scan, remote: Path, dev_cluster: LiveCluster, tmp_path: Path
) -> None:
    scan.backups = GitBackups(GitBackupSpec(f"file://{remote}", "backups"), tmp_path / "clone").under("live-scan")  # type: ignore[assignment]
    scan.create(deployment("stray", {}))
    scan.start(parse_policies({"policies/p.yaml": POLICIES}))
    eventually(lambda: not scan.exists("stray"), timeout=20, every=0.1)
    assert scan.heard_once("stray", "deleted") == ["violation", "deleted"]

    (commit,) = git(remote, "log", "--format=%H", "backups").splitlines()
    message = git(remote, "log", "-1", "--format=%B", commit)
    assert f"Deployment/{scan.namespace}/stray" in message and "GG3001" in message and "grace period" in message
    (path,) = git(remote, "show", "--name-only", "--format=", commit).splitlines()

    (deleted,) = [a for a in scan.heard if a.event == "deleted"]
    ((notice,),) = [from_announcements([deleted])]
    assert commit[:12] in notice.action and path in notice.action and "kubectl apply -f" in notice.action
    assert "pull request" in notice.action

    clone = tmp_path / "restore"  # what the notice says to do
    git(tmp_path, "clone", "--quiet", str(remote), str(clone))
    git(clone, "checkout", "--quiet", commit)
    subprocess.run([kubectl(), "--kubeconfig", str(dev_cluster.kubeconfig), "apply", "-f", str(clone / path)],
                   check=True, capture_output=True)  # fmt: skip
    restored = client.AppsV1Api(scan.api).read_namespaced_deployment("stray", scan.namespace)
    assert restored.spec is not None and restored.spec.template.spec is not None
    assert restored.spec.template.spec.containers[0].image == "example/x:1"


def test_a_backup_that_cannot_be_pushed_deletes_nothing(scan: Scan, tmp_path: Path) -> None:
    spec = GitBackupSpec("https://127.0.0.1:9/backups.git", "backups", Credentials(token="tok-XYZ987"))
    scan.backups = GitBackups(spec, tmp_path / "clone")  # type: ignore[assignment]
    scan.create(deployment("stray", {}))
    scan.start(parse_policies({"policies/p.yaml": POLICIES}))
    failures = scan.heard_once("stray", "delete-failed")
    assert "deleted" not in failures and scan.exists("stray")
    detail = next(d for e, d in scan.events("Deployment", "stray") if e == "delete-failed")
    assert "kept, not deleted" in detail and "tok-XYZ987" not in detail


def test_an_unmanaged_workload_swept_by_a_pass_is_one_commit_under_its_unit_and_restores(
    admin_api: client.ApiClient, namespace: str, remote: Path, dev_cluster: LiveCluster, tmp_path: Path
) -> None:
    import time

    from gitopsguard.cluster.apply import Applier
    from gitopsguard.cluster.inventory import InventoryStore
    from gitopsguard.model import Action
    from gitopsguard.reconcile import Unit, reconcile
    from gitopsguard.source import GitSource, SourceSpec
    from tests.gitrepo import Upstream

    upstream = Upstream(tmp_path / "source")
    upstream.write("apps/ns.yaml", f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {namespace}\n  annotations: "
                   "{gitopsguard.io/unmanaged: delete, gitopsguard.io/unmanaged-grace: 1s}\n")  # fmt: skip
    upstream.commit()
    stray = deployment("stray", {})
    client.AppsV1Api(admin_api).create_namespaced_deployment(namespace, as_model(client.V1Deployment, stray))
    store = GitBackups(GitBackupSpec(f"file://{remote}", "backups"), tmp_path / "clone")
    unit = Unit(namespace, "apps", default_namespace=namespace, backup_dir=store)
    source = GitSource(SourceSpec(upstream.url), tmp_path / "gg")
    reconcile(unit, source, Applier(admin_api), InventoryStore(admin_api))  # first seen
    time.sleep(1.5)
    swept = reconcile(unit, source, Applier(admin_api), InventoryStore(admin_api))
    change = next(c for c in swept.changes if str(c.key) == f"Deployment/{namespace}/stray")
    assert change.action is Action.DELETED, change.detail
    (commit,) = git(remote, "log", "--format=%H", "backups").splitlines()
    (path,) = git(remote, "show", "--name-only", "--format=", commit).splitlines()
    assert path.startswith(f"{namespace}/{namespace}/Deployment-stray-") and commit[:12] in change.detail
    assert "unmanaged" in git(remote, "log", "-1", "--format=%B", commit)
    apps = client.AppsV1Api(admin_api)

    def stray_gone() -> bool:
        live = apps.list_namespaced_deployment(namespace).items
        return not [d for d in live if name_of(d) == "stray" and not meta(d).deletion_timestamp]

    eventually(stray_gone, timeout=20, every=0.1)
    restored = tmp_path / "restore"
    git(tmp_path, "clone", "--quiet", "--branch", "backups", str(remote), str(restored))
    subprocess.run([kubectl(), "--kubeconfig", str(dev_cluster.kubeconfig), "apply", "-f", str(restored / path)],
                   check=True, capture_output=True)  # fmt: skip
    assert name_of(client.AppsV1Api(admin_api).read_namespaced_deployment("stray", namespace)) == "stray"
