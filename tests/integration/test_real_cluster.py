"""The harness gives tests a real API server, real RBAC and real controllers."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from gitopsguard.cli import main
from gitopsguard.cluster import server_info
from gitopsguard.devcluster.ports import free_port
from tests.integration.conftest import LiveCluster, bind_user
from tests.kube import meta
from tests.waiting import eventually

pytestmark = pytest.mark.integration


def test_server_reports_version_1_20_2_and_ready(admin_api: client.ApiClient) -> None:
    info = server_info(admin_api)
    assert info.version == "v1.20.2"
    assert info.ready
    assert info.failing_checks == ()


def test_configmap_is_created_read_and_deleted(admin_api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(admin_api)
    body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="settings"), data={"colour": "blue"})
    core.create_namespaced_config_map(namespace, body)
    assert core.read_namespaced_config_map("settings", namespace).data == {"colour": "blue"}
    core.delete_namespaced_config_map("settings", namespace)
    with pytest.raises(ApiException) as missing:
        core.read_namespaced_config_map("settings", namespace)
    assert missing.value.status == 404


def test_ordinary_user_is_forbidden_until_a_rolebinding_allows_it(
    dev_cluster: LiveCluster, admin_api: client.ApiClient, namespace: str
) -> None:
    alice = client.CoreV1Api(dev_cluster.api("dev-alice"))
    with pytest.raises(ApiException) as denied:
        alice.list_namespaced_config_map(namespace)
    assert denied.value.status == 403
    bind_user(admin_api, namespace, "alice-view", "ClusterRole", "view")
    eventually(lambda: _can_list(alice, namespace), timeout=10, every=0.25)


def _can_list(core: client.CoreV1Api, namespace: str) -> bool:
    try:
        core.list_namespaced_config_map(namespace)
    except ApiException as error:
        if error.status == 403:
            return False
        raise
    return True


def test_controller_manager_turns_a_deployment_into_a_pending_pod(admin_api: client.ApiClient, namespace: str) -> None:
    labels = {"app": "web"}
    container = client.V1Container(name="web", image="nginx:1.25")
    deployment = client.V1Deployment(
        metadata=client.V1ObjectMeta(name="web"),
        spec=client.V1DeploymentSpec(
            replicas=1,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels), spec=client.V1PodSpec(containers=[container])
            ),
        ),
    )
    client.AppsV1Api(admin_api).create_namespaced_deployment(namespace, deployment)
    core = client.CoreV1Api(admin_api)
    eventually(
        lambda: len(core.list_namespaced_pod(namespace, label_selector="app=web").items) == 1, timeout=60, every=0.25
    )
    (pod,) = core.list_namespaced_pod(namespace, label_selector="app=web").items
    assert pod.status is not None and pod.status.phase == "Pending"  # no scheduler or kubelet, by design


def test_new_namespace_gets_a_default_service_account(admin_api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(admin_api)
    eventually(
        lambda: any(meta(sa).name == "default" for sa in core.list_namespaced_service_account(namespace).items),
        timeout=60,
        every=0.25,
    )


def test_cluster_info_command_prints_version_and_readiness(dev_cluster: LiveCluster) -> None:
    result = CliRunner().invoke(main, ["cluster-info", "--kubeconfig", str(dev_cluster.kubeconfig)])
    assert result.exit_code == 0, result.output
    assert "version: v1.20.2" in result.output
    assert "ready:   yes" in result.output


def test_cluster_info_against_a_dead_server_says_it_is_unreachable(tmp_path: Path, dev_cluster: LiveCluster) -> None:
    text = dev_cluster.kubeconfig.read_text()
    server = next(line.split("server: ")[1] for line in text.splitlines() if "server: " in line)
    path = tmp_path / "kubeconfig"
    path.write_text(text.replace(server, f"https://127.0.0.1:{free_port()}"))
    result = CliRunner().invoke(main, ["cluster-info", "--kubeconfig", str(path)])
    assert result.exit_code == 2
    assert "unreachable" in result.output
