"""Pods on the dev cluster's real node: scheduled without ``nodeName``, Ready, reaching Services and the API
server, reached by the API server through a Service, and unable to reach what only loopback may.

The image is a static test program (``node_probe.c``) compiled here and imported by hand: no registry exists.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from gitopsguard.devcluster import StateLayout
from gitopsguard.devcluster.node import import_image
from gitopsguard.devcluster.node_config import BRIDGE_IP
from gitopsguard.devcluster.node_net import GUARD_CHAINS, first_rule
from gitopsguard.devcluster.oci_image import write_single_binary_image
from tests.integration.conftest import LiveCluster
from tests.kube import as_model, pod_spec, pod_status

pytestmark = pytest.mark.integration

PROBE_IMAGE = "localhost/gitopsguard-test/node-probe:1"
PROBE_SOURCE = Path(__file__).with_name("node_probe.c")


@pytest.fixture(scope="session")
def probe_image(node: str, dev_cluster: LiveCluster, tmp_path_factory: pytest.TempPathFactory) -> str:
    """node_probe, compiled statically and imported into the node's containerd as a one-file image."""
    work = tmp_path_factory.mktemp("node-probe")
    binary = work / "node_probe"
    subprocess.run(["gcc", "-Os", "-Wall", "-Werror", "-static", "-o", str(binary), str(PROBE_SOURCE)], check=True)
    archive = work / "node-probe.tar"
    write_single_binary_image(binary, PROBE_IMAGE, archive)
    import_image(archive, StateLayout(dev_cluster.kubeconfig.parent))
    return PROBE_IMAGE


def container(name: str, *args: str, ready_port: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": name,
        "image": PROBE_IMAGE,
        "imagePullPolicy": "Never",
        "args": list(args),
        "securityContext": {"allowPrivilegeEscalation": False, "runAsNonRoot": True, "runAsUser": 65534},
    }
    if ready_port is not None:
        body["readinessProbe"] = {"tcpSocket": {"port": ready_port}, "periodSeconds": 1}
    return body


def pod(
    name: str, containers: list[dict[str, Any]], *, init: list[dict[str, Any]] | None = None, restart: str = "Always"
) -> dict[str, Any]:
    # No token: these Pods never call the API, and a fresh namespace's token may not exist yet.
    spec = {"containers": containers, "initContainers": init or [], "restartPolicy": restart,
            "terminationGracePeriodSeconds": 0, "automountServiceAccountToken": False}  # fmt: skip
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": name}}, "spec": spec}


def wait_pod(core: client.CoreV1Api, node_namespace: str, name: str, done: str, timeout: float = 120) -> client.V1Pod:
    """Wait until the Pod is Ready (``done="Ready"``) or has finished (``done="Succeeded"``/``"Failed"``)."""
    deadline = time.monotonic() + timeout
    while True:
        current = core.read_namespaced_pod(name, node_namespace)
        status = pod_status(current)
        conditions = {c.type: c.status for c in status.conditions or []}
        if (conditions.get("Ready") == "True" and done == "Ready") or status.phase == done:
            return current
        if status.phase in {"Succeeded", "Failed"} and done == "Ready":
            pytest.fail(f"Pod {name} ended {status.phase} instead of Ready: {status}")
        assert time.monotonic() < deadline, f"Pod {node_namespace}/{name} not {done} after {timeout}s: {status}"
        time.sleep(0.5)


@pytest.fixture
def core(admin_api: client.ApiClient) -> Iterator[client.CoreV1Api]:
    yield client.CoreV1Api(admin_api)


@pytest.fixture
def web(core: client.CoreV1Api, node_namespace: str, probe_image: str) -> str:
    """A Pod serving HTTP on 8080 behind the Service ``web`` (port 80); returns the Service's ClusterIP."""
    core.create_namespaced_pod(
        node_namespace, as_model(client.V1Pod, pod("web", [container("serve", "serve", "8080", ready_port=8080)]))
    )
    service: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {
            "selector": {"app": "web"},
            "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}],
        },
    }
    created = core.create_namespaced_service(node_namespace, as_model(client.V1Service, service))
    wait_pod(core, node_namespace, "web", "Ready")
    assert created.spec is not None
    return str(created.spec.cluster_ip)


def test_pod_is_scheduled_onto_the_node_and_becomes_ready(
    core: client.CoreV1Api, node_namespace: str, node: str, web: str
) -> None:
    placed = core.read_namespaced_pod("web", node_namespace)
    assert pod_spec(placed).node_name == node  # kube-scheduler placed it: the manifest names no node
    assert str(pod_status(placed).pod_ip).startswith("10.244.0.")


def test_pod_reaches_a_service_and_the_api_server_through_the_kubernetes_service(
    core: client.CoreV1Api, node_namespace: str, web: str
) -> None:
    # Init containers run in order and the Pod is Ready only after both succeeded.
    init = [container("api", "tcp", "10.96.0.1", "443"), container("web", "get", web, "80")]
    core.create_namespaced_pod(
        node_namespace,
        as_model(client.V1Pod, pod("client", [container("idle", "serve", "8081", ready_port=8081)], init=init)),
    )
    wait_pod(core, node_namespace, "client", "Ready")
    logs = core.read_namespaced_pod_log("client", node_namespace, container="web")  # the API server asks the kubelet
    assert f"reached {web}:80" in logs


def test_api_server_reaches_a_pod_through_its_service(
    admin_api: client.ApiClient, node_namespace: str, web: str
) -> None:
    answer = client.CoreV1Api(admin_api).connect_get_namespaced_service_proxy("web:http", node_namespace)
    assert answer.startswith("node_probe web")


def test_pod_cannot_reach_the_kubelet_or_etcd_which_listen_on_loopback_only(
    core: client.CoreV1Api, node_namespace: str, probe_image: str, dev_cluster: LiveCluster
) -> None:
    etcd = json.loads(StateLayout(dev_cluster.kubeconfig.parent).state_file.read_text())["ports"]["etcd_client"]
    probes = [container(f"p{port}", "closed", BRIDGE_IP, str(port)) for port in (10250, 10248, 10256, etcd)]
    core.create_namespaced_pod(node_namespace, as_model(client.V1Pod, pod("attacker", probes, restart="Never")))
    finished = wait_pod(core, node_namespace, "attacker", "Succeeded")
    assert pod_status(finished).phase == "Succeeded", [
        core.read_namespaced_pod_log("attacker", node_namespace, container=c["name"]) for c in probes
    ]


def test_guard_chains_are_in_place_before_pods_use_service_ips(node: str) -> None:
    # Without them a Service IP kube-proxy has not programmed leaves by the default route, and route_localnet
    # (which kube-proxy turns on) lets packets for 127.0.0.1 in from other interfaces.
    # They must come first: kube-proxy's KUBE-FORWARD, jumped to from FORWARD, accepts some traffic outright.
    for parent, chain in zip(("INPUT", "FORWARD", "OUTPUT"), GUARD_CHAINS, strict=True):
        assert first_rule("filter", parent) == f"-A {parent} -j {chain}"
    guard = subprocess.run(["iptables", "-w", "-S", GUARD_CHAINS[0]], capture_output=True, text=True, check=True)
    assert "! -i lo" in guard.stdout and "-d 127.0.0.0/8" in guard.stdout and "-j DROP" in guard.stdout


def test_image_pull_fails_at_once_without_leaving_the_machine(
    core: client.CoreV1Api, node_namespace: str, probe_image: str
) -> None:
    # A manifest naming a registry image: containerd's registry requests go to a dead loopback proxy.
    pulled = container("pulled", "serve", "8080")
    pulled.update(image="registry.example/never/there:1", imagePullPolicy="Always")
    core.create_namespaced_pod(node_namespace, as_model(client.V1Pod, pod("puller", [pulled])))
    deadline = time.monotonic() + 60
    while True:
        statuses = pod_status(core.read_namespaced_pod("puller", node_namespace)).container_statuses or []
        state = statuses[0].state if statuses else None
        waiting = state.waiting if state is not None else None
        if waiting is not None and waiting.reason in {"ErrImagePull", "ImagePullBackOff"} and waiting.message:
            break
        assert time.monotonic() < deadline, f"no pull error after 60 s: {statuses}"
        time.sleep(0.5)
    assert "proxyconnect tcp: dial tcp 127.0.0.1:9" in waiting.message, waiting.message


def test_api_server_dials_a_services_endpoint_itself_not_its_cluster_ip(
    admin_api: client.ApiClient, node_namespace: str, web: str
) -> None:
    # --enable-aggregator-routing: for aggregated APIs and webhooks behind a Service, the API server resolves
    # the Service to a Pod IP itself instead of relying on a ClusterIP route. web speaks plain HTTP, so the
    # APIService stays unavailable, and its condition names the address that was dialled.
    registration = client.ApiregistrationV1Api(admin_api)
    name = f"v1.{node_namespace}.node-probe.example"
    body: dict[str, Any] = {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
                            "metadata": {"name": name}, "spec": {
        "group": f"{node_namespace}.node-probe.example", "version": "v1", "groupPriorityMinimum": 100,
        "versionPriority": 10, "insecureSkipTLSVerify": True,
        "service": {"name": "web", "namespace": node_namespace, "port": 80}}}  # fmt: skip
    registration.create_api_service(as_model(client.V1APIService, body))
    try:
        pod_ip = pod_status(client.CoreV1Api(admin_api).read_namespaced_pod("web", node_namespace)).pod_ip
        deadline = time.monotonic() + 60
        while True:
            status = registration.read_api_service_status(name).status
            conditions = (status.conditions if status is not None else None) or []
            message = next((c.message or "" for c in conditions if c.type == "Available"), "")
            if "https://" in message:
                break
            assert time.monotonic() < deadline, f"APIService {name} never tried its Service: {conditions}"
            time.sleep(0.5)
        assert f"https://{pod_ip}:8080/" in message, message
        assert web not in message
    finally:
        registration.delete_api_service(name)  # an unavailable API group would break discovery for others


def test_pods_of_ordinary_test_namespaces_stay_off_the_node(
    core: client.CoreV1Api, namespace: str, node: str, probe_image: str
) -> None:
    # The suite's other tests expect Pods that never run and vanish at once when deleted.
    core.create_namespaced_pod(
        namespace, as_model(client.V1Pod, pod("bystander", [container("serve", "serve", "8080")]))
    )
    deadline = time.monotonic() + 30
    while not (conditions := pod_status(core.read_namespaced_pod("bystander", namespace)).conditions):
        assert time.monotonic() < deadline, "the scheduler never looked at the Pod"
        time.sleep(0.5)
    (scheduled,) = [c for c in conditions if c.type == "PodScheduled"]
    assert (scheduled.status, scheduled.reason) == ("False", "Unschedulable")
    assert "gitopsguard.io/tests-opt-in" in str(scheduled.message)
