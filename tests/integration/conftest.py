"""The integration harness: one real control plane for the whole session, a fresh namespace per test.

Set ``GITOPSGUARD_TEST_KUBECONFIG`` to the kubeconfig of a running dev cluster (``gitopsguard dev-cluster
env``) to reuse it; otherwise the session starts its own in a temporary directory, building the binaries
once if the cache is cold, and takes it down at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from gitopsguard.cluster import connect
from gitopsguard.devcluster import CacheLayout, DevCluster, StateLayout
from gitopsguard.devcluster.node import node_owner
from gitopsguard.devcluster.progress import SilentProgress, StagedProgress
from gitopsguard.model import Manifest
from gitopsguard.render.stored import RenderStore
from tests.kube import as_model, close
from tests.sigterm import sigterm_as_interrupt

TEST_LABEL = "gitopsguard.io/test-namespace"


@dataclass(frozen=True)
class LiveCluster:
    kubeconfig: Path
    owned: DevCluster | None  # None when reusing a cluster someone else runs

    def api(self, context: str = "dev-admin") -> client.ApiClient:
        return connect(self.kubeconfig, context)

    @property
    def audit_log(self) -> Path:
        """The API server's audit log (the kubeconfig sits in the cluster's state directory)."""
        return StateLayout(self.kubeconfig.parent).audit_log


@pytest.fixture(scope="session")
def dev_cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveCluster]:
    reuse = os.environ.get("GITOPSGUARD_TEST_KUBECONFIG")
    if reuse:
        _reserve_node(LiveCluster(Path(reuse), None))
        yield LiveCluster(Path(reuse), None)
        return
    cluster = DevCluster(
        StateLayout(tmp_path_factory.mktemp("dev-cluster")), CacheLayout.default(), StagedProgress(sys.stderr)
    )
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with sigterm_as_interrupt():  # a killed session still stops its control planes (this one and spares)
        try:
            with capture.global_and_fixture_disabled():  # a cold build takes minutes: let its progress show
                result = cluster.up(audit_log=True, node=_can_run_node())
            _reserve_node(LiveCluster(result.kubeconfig, cluster))
            yield LiveCluster(result.kubeconfig, cluster)
        finally:
            cluster.down()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The node lifecycle test brings up a node of its own, and a machine runs one node: run it before
    anything starts the session's cluster (which takes the node for the rest of the session)."""
    items.sort(key=lambda item: item.path.name != "test_node_lifecycle.py")


# Most tests were written for a cluster where Pods stay Pending (and are deleted at once). On a node they
# would run, and a deleted Pod would wait out its grace period: the suite taints the node, and only Pods in
# namespaces from `node_namespace` (annotated with a default toleration) are scheduled there.
NODE_OPT_IN_TAINT = "gitopsguard.io/tests-opt-in"
DEFAULT_TOLERATIONS = "scheduler.alpha.kubernetes.io/defaultTolerations"


def has_node(cluster: LiveCluster) -> bool:
    """Whether this dev cluster runs a node (a kubelet and containerd)."""
    status = DevCluster(StateLayout(cluster.kubeconfig.parent), CacheLayout.default(), SilentProgress()).status()
    return status.node is not None


def _reserve_node(cluster: LiveCluster) -> None:
    status = DevCluster(StateLayout(cluster.kubeconfig.parent), CacheLayout.default(), SilentProgress()).status()
    if status.node is None:
        return
    api = cluster.api()
    core = client.CoreV1Api(api)
    spec = core.read_node(status.node).spec
    taints = (spec.taints if spec is not None else None) or []
    if not any(taint.key == NODE_OPT_IN_TAINT for taint in taints):
        # sanitize_for_serialization is unannotated in the client's package; it keeps every field (timeAdded)
        kept = [api.sanitize_for_serialization(t) for t in taints]  # type: ignore[no-untyped-call]
        mine = {"key": NODE_OPT_IN_TAINT, "value": "true", "effect": "NoSchedule"}
        core.patch_node(status.node, {"spec": {"taints": [*kept, mine]}})
    close(api)


def _can_run_node() -> bool:
    """A node needs root and a machine whose node nobody else holds; without one, node tests skip."""
    return os.geteuid() == 0 and node_owner() is None


@pytest.fixture(scope="session")
def node(dev_cluster: LiveCluster) -> str:
    """The name of the session cluster's node (a real kubelet and containerd); skips when it has none."""
    status = DevCluster(StateLayout(dev_cluster.kubeconfig.parent), CacheLayout.default(), SilentProgress()).status()
    if status.node is None:
        pytest.skip("this dev cluster runs no node (started with --no-node, or not as root)")
    assert status.node_ready, f"the dev cluster's node {status.node} is not Ready; see `gitopsguard dev-cluster status`"
    return status.node


@pytest.fixture
def node_namespace(node: str, admin_api: client.ApiClient) -> Iterator[str]:
    """Like ``namespace``, but its Pods tolerate the suite's taint and so run on the node."""
    core = client.CoreV1Api(admin_api)
    name = f"t-{uuid.uuid4().hex[:10]}"
    toleration = json.dumps([{"key": NODE_OPT_IN_TAINT, "operator": "Exists", "effect": "NoSchedule"}])
    meta = client.V1ObjectMeta(name=name, labels={TEST_LABEL: "true"}, annotations={DEFAULT_TOLERATIONS: toleration})
    core.create_namespace(client.V1Namespace(metadata=meta))
    yield name
    with contextlib.suppress(ApiException):
        core.delete_namespace(name)


@pytest.fixture(scope="module")
def spare(dev_cluster: LiveCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    """A second, throw-away control plane for tests that kill or restart its parts (cached binaries)."""
    cluster = DevCluster(StateLayout(tmp_path_factory.mktemp("spare")), CacheLayout.default(), SilentProgress())
    cluster.up()
    yield cluster
    cluster.down()


@pytest.fixture
def admin_api(dev_cluster: LiveCluster) -> Iterator[client.ApiClient]:
    api = dev_cluster.api()
    yield api
    close(api)


@pytest.fixture
def namespace(admin_api: client.ApiClient) -> Iterator[str]:
    """A namespace of its own for one test; deleted afterwards (the namespace controller empties it)."""
    core = client.CoreV1Api(admin_api)
    name = f"t-{uuid.uuid4().hex[:10]}"
    body = client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels={TEST_LABEL: "true"}))
    core.create_namespace(body)
    yield name
    try:
        core.delete_namespace(name)
    except ApiException as error:
        if error.status != 404:
            raise


def bind_user(api: client.ApiClient, namespace: str, name: str, role_kind: str, role: str, user: str = "alice") -> None:
    """A RoleBinding in ``namespace`` giving ``user`` the Role or ClusterRole ``role``."""
    client.RbacAuthorizationV1Api(api).create_namespaced_role_binding(
        namespace,
        client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name=name),
            role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind=role_kind, name=role),
            subjects=[client.RbacV1Subject(kind="User", name=user, api_group="rbac.authorization.k8s.io")],
        ),
    )


@pytest.fixture
def gadgets(admin_api: client.ApiClient) -> Iterator[str]:
    """A CRD of our own (kind Gadget, plural gadgets) with a status subresource and any fields, as a
    controller's custom resources have: its group, unique to the test."""
    group = f"t{uuid.uuid4().hex[:8]}.example.com"
    crds = client.ApiextensionsV1Api(admin_api)
    schema = {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}
    crds.create_custom_resource_definition(as_model(client.V1CustomResourceDefinition, {
        "metadata": {"name": f"gadgets.{group}"},
        "spec": {"group": group, "scope": "Namespaced", "names": {"plural": "gadgets", "kind": "Gadget"},
                 "versions": [{"name": "v1", "served": True, "storage": True, "schema": schema,
                               "subresources": {"status": {}}}]},
    }))  # fmt: skip
    yield group
    crds.delete_custom_resource_definition(f"gadgets.{group}")


@pytest.fixture
def worker_waits(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """The loop's head worker (thread "heads") renders only once the returned event is set, at most 30 s later; the
    loop's own renders do not wait: a restarted loop holds the last applied commit meanwhile."""
    release, real = threading.Event(), RenderStore.render

    def render(self: RenderStore, root: Path, path: str, commit: str) -> tuple[Manifest, ...]:
        if threading.current_thread().name == "heads":
            release.wait(30)
        return real(self, root, path, commit)

    monkeypatch.setattr(RenderStore, "render", render)
    yield release
    release.set()
