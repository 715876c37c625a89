"""The controller as its own service account: manifests/ installs its RBAC; with that account's real token,
outside the cluster, `gitopsguard reconcile` applies repo-template/ - and the token can do no more."""

from __future__ import annotations

import base64
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from gitopsguard.cli import main
from gitopsguard.cluster import connect
from tests.gitrepo import Upstream
from tests.integration.conftest import LiveCluster
from tests.kube import as_model, labels_of, meta
from tests.kubectl import kubectl

pytestmark = pytest.mark.integration
ROOT = Path(__file__).parents[2]


def service_account_token(api: client.ApiClient) -> str:
    core = client.CoreV1Api(api)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        account = core.read_namespaced_service_account("gitopsguard", "gitopsguard-system")
        for ref in account.secrets or []:
            assert ref.name is not None, "a ServiceAccount's secret reference without a name"
            secret = core.read_namespaced_secret(ref.name, "gitopsguard-system")
            if secret.data and secret.data.get("token"):
                return base64.b64decode(secret.data["token"]).decode()
        time.sleep(0.2)
    raise AssertionError("no token for ServiceAccount gitopsguard-system/gitopsguard")


def account_kubeconfig(
    dev_cluster: LiveCluster, admin_api: client.ApiClient, tmp_path: Path, parts: tuple[str, ...]
) -> Path:
    """Apply these files of manifests/ as shipped; a kubeconfig (context "controller") with the token of the
    controller's own ServiceAccount."""
    for part in parts:
        apply = [kubectl(), "--kubeconfig", str(dev_cluster.kubeconfig), "apply", "--server-side", "--force-conflicts"]
        subprocess.run([*apply, "-f", str(ROOT / "manifests" / part)], check=True, capture_output=True)
    config = yaml.safe_load(dev_cluster.kubeconfig.read_text())
    config["users"] = [{"name": "gitopsguard", "user": {"token": service_account_token(admin_api)}}]
    config["contexts"] = [{"name": "controller", "context": {"cluster": config["clusters"][0]["name"],
                                                              "user": "gitopsguard"}}]  # fmt: skip
    config["current-context"] = "controller"
    path = tmp_path / "controller.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


@pytest.fixture
def controller_kubeconfig(dev_cluster: LiveCluster, admin_api: client.ApiClient, tmp_path: Path) -> Iterator[Path]:
    yield account_kubeconfig(
        dev_cluster,
        admin_api,
        tmp_path,
        ("namespace.yaml", "crds/policyreport.yaml", "controller-rbac.yaml", "grants-rbac.yaml"),
    )
    core = client.CoreV1Api(admin_api)
    for name in ("shop", "payments"):
        try:
            core.delete_namespace(name)
        except ApiException as error:
            if error.status != 404:
                raise
    deadline = time.monotonic() + 60  # gone for good before later tests use the template's namespaces
    while time.monotonic() < deadline and any(
        meta(n).name in ("shop", "payments") for n in core.list_namespace().items
    ):
        time.sleep(0.5)


def test_the_controller_account_reconciles_the_template_with_exactly_its_own_permissions(
    controller_kubeconfig: Path, admin_api: client.ApiClient, tmp_path: Path
) -> None:
    upstream = Upstream(tmp_path / "git")
    shutil.copytree(ROOT / "repo-template", upstream.work, dirs_exist_ok=True)
    upstream.commit()
    result = CliRunner().invoke(main, [
        "reconcile", "--repo", str(upstream.bare), "--path", "clusters/dev", "--unit", f"tpl-{uuid.uuid4().hex[:8]}",
        "--kubeconfig", str(controller_kubeconfig), "--workdir", str(tmp_path / "gg"),
        "--audit-log", str(tmp_path / "audit.jsonl"),
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert labels_of(client.AppsV1Api(admin_api).read_namespaced_deployment("shop", "shop"))["team"] == "shop"

    own = connect(controller_kubeconfig)
    with pytest.raises(ApiException) as secrets:
        client.CoreV1Api(own).list_namespaced_secret("kube-system")
    admin_role = {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"}
    binding = {
        "metadata": {"name": "escalate"},
        "subjects": [{"kind": "User", "name": "mallory"}],
        "roleRef": admin_role,
    }
    with pytest.raises(ApiException) as escalation:
        client.RbacAuthorizationV1Api(own).create_cluster_role_binding(as_model(client.V1ClusterRoleBinding, binding))
    assert secrets.value.status == 403 and escalation.value.status == 403


def test_the_whole_controller_runs_as_its_account_without_a_single_forbidden(
    controller_kubeconfig: Path, tmp_path: Path
) -> None:
    upstream = Upstream(tmp_path / "git")
    shutil.copytree(ROOT / "repo-template", upstream.work, dirs_exist_ok=True)
    example = upstream.work / "access" / "grants" / "alice-debug-payments.yaml"
    example.write_text(example.read_text().replace("INC-2231", f"INC-{uuid.uuid4().hex[:6]}"))  # a new request
    upstream.commit()
    key = tmp_path / "key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    trust = tmp_path / "trust.yaml"
    trust.write_text(yaml.safe_dump({"signers": [{"user": "carol", "groups": ["security-reviewers"],
                                                  "keys": [(tmp_path / "key.pub").read_text().strip()]}]}))  # fmt: skip
    process = subprocess.Popen([
        sys.executable, "-m", "gitopsguard", "run", "--repo", str(upstream.bare), "--path", "clusters/dev",
        "--unit", f"tpl-{uuid.uuid4().hex[:8]}", "--kubeconfig", str(controller_kubeconfig),
        "--workdir", str(tmp_path / "gg"), "--audit-log", str(tmp_path / "audit.jsonl"), "--interval", "2",
        "--leader-elect", "--approval-mode", "signed-merge", "--trust", str(trust), "--metrics-address", "",
    ], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    time.sleep(12)
    process.send_signal(signal.SIGTERM)
    output = process.communicate(timeout=20)[0]
    assert process.returncode == 0, output
    assert "leading unit" in output and "Deployment/shop/shop created" in output, output
    # the keeper ran, and denied the unreviewed request (its policy, pushed straight too, is not in force either)
    assert "alice-debug-payments" in output and ") denied: " in output, output
    assert "forbidden" not in output.lower(), output
