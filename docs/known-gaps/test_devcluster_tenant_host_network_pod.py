"""Attack: a tenant with one namespace on the shared dev cluster (context ``dev-alice``, bound to ``edit`` there).

docs/dev-cluster-node.md rests the anonymous kubelet and the unauthenticated etcd on one guarantee: "Pods ...
cannot reach the kubelet, etcd or kube-proxy". That holds for a Pod on the bridge; but the API server runs with
``--allow-privileged=true`` and no Pod security admission (only NodeRestriction and PodTolerationRestriction,
devcluster/components.py), so a tenant may ask for ``hostNetwork: true`` (its packets then arrive on ``lo``,
which GITOPSGUARD-NODE-IN lets through to 127.0.0.1: etcd with no authentication, the AlwaysAllow kubelet) or
simply ``privileged: true`` with hostPath ``/``. The suite's taint does not stop it either: a Pod may carry a
toleration for any taint (PodTolerationRestriction only limits namespaces that carry a whitelist), and
``dev-cluster up`` itself taints nothing. On a cluster with a node, such a Pod runs and the tenant owns etcd,
hence the cluster, and the machine.

This test runs on the shared control plane (no node here): it shows the API server admits the tenant's Pod,
which is what lets the node run it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.integration.conftest import NODE_OPT_IN_TAINT, LiveCluster, bind_user
from tests.kube import as_model, close

pytestmark = pytest.mark.integration


@pytest.fixture
def alice(dev_cluster: LiveCluster, admin_api: client.ApiClient, namespace: str) -> Iterator[client.CoreV1Api]:
    bind_user(admin_api, namespace, "alice-edit", "ClusterRole", "edit")
    api = dev_cluster.api("dev-alice")
    yield client.CoreV1Api(api)
    close(api)


def host_pod(name: str, **spec: object) -> dict[str, object]:
    container = {"name": "probe", "image": "gitopsguard-node-probe:latest", "imagePullPolicy": "Never",
                 "securityContext": {"privileged": True}}  # fmt: skip
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [container], "tolerations": [{"key": NODE_OPT_IN_TAINT, "operator": "Exists"}],
                     **spec}}  # fmt: skip


ESCAPE = (
    "no Pod security admission on the dev cluster: a tenant's hostNetwork or privileged Pod, tolerating the "
    "suite's taint, is admitted and would reach etcd on loopback"
)


@pytest.mark.xfail(strict=True, reason=ESCAPE)
@pytest.mark.parametrize(
    "spec",
    [
        {"hostNetwork": True},  # its packets to 127.0.0.1 arrive on lo: etcd, the kubelet, kube-proxy
        {"volumes": [{"name": "root", "hostPath": {"path": "/"}}]},  # the machine's files, etcd's data included
    ],
    ids=["hostNetwork", "hostPath-root"],
)
def test_a_tenants_pod_that_would_reach_the_nodes_loopback_is_refused(
    alice: client.CoreV1Api, namespace: str, spec: dict[str, object]
) -> None:
    with pytest.raises(ApiException) as refused:
        alice.create_namespaced_pod(namespace, as_model(client.V1Pod, host_pod("escape", **spec)))
    assert refused.value.status in (400, 403, 422)  # today: 201 Created
