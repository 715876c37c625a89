"""A process without any kubeconfig, set up as the kubelet sets up a Pod (KUBERNETES_SERVICE_HOST/PORT and a
service-account folder holding a bound token from the TokenRequest API and the cluster's CA), talks to the
real API server; when the token file is rewritten (as the kubelet does, by swapping its ..data link) and the
old token is revoked (the Secret it was bound to deleted), every path keeps working with the new token: the
direct transport, urllib3's watch and the kubernetes client's ApiClient."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from gitopsguard.cluster.incluster import DIR_VARIABLE
from tests.integration.conftest import LiveCluster
from tests.kube import meta

pytestmark = pytest.mark.integration

# One line in, one line out: each line asks the three paths once and says which worked (the watch first:
# each path must notice the rotation by itself).
PROBE = textwrap.dedent(
    """
    import sys
    from kubernetes import client
    from gitopsguard.cluster import connect
    from gitopsguard.cluster import rest
    from gitopsguard.cluster.rest import RawApi
    from gitopsguard.errors import GitOpsGuardError

    # Credentials kept for an hour: the rotation must be noticed from the refusal, not from the cache ageing.
    rest.AUTH_TTL = 3600.0
    namespace = sys.argv[1]
    api = connect()
    raw = RawApi(api, timeout=10)
    print("connected", api.configuration.host, flush=True)
    for _ in sys.stdin:
        results = []
        try:
            query = {"timeoutSeconds": "1", "allowWatchBookmarks": "false"}
            events = list(raw.watch(f"/api/v1/namespaces/{namespace}/configmaps", query, read_timeout=10))
            errors = [e for e in events if e.get("type") == "ERROR"]
            results.append("watch=" + (str(errors[0]["object"].get("code")) if errors else "ok"))
        except GitOpsGuardError as error:
            results.append(f"watch={type(error).__name__}")
        try:
            raw.get(f"/api/v1/namespaces/{namespace}/configmaps")
            results.append("direct=ok")
        except GitOpsGuardError as error:
            results.append(f"direct={type(error).__name__}")
        try:
            client.CoreV1Api(api).list_namespaced_config_map(namespace)
            results.append("client=ok")
        except client.exceptions.ApiException as error:
            results.append(f"client={error.status}")
        print(" ".join(results), flush=True)
    """
)
ALL_OK = "watch=ok direct=ok client=ok"


def bound_token(core: client.CoreV1Api, namespace: str, account: str, secret: str) -> str:
    """A token like the kubelet's: from the TokenRequest API, bound to an object (here a Secret) whose
    deletion revokes it."""
    created = core.create_namespaced_secret(namespace, client.V1Secret(metadata=client.V1ObjectMeta(name=secret)))
    request = client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(
        audiences=[], expiration_seconds=600,
        bound_object_ref=client.V1BoundObjectReference(api_version="v1", kind="Secret", name=secret,
                                                       uid=meta(created).uid),
    ))  # fmt: skip
    status = core.create_namespaced_service_account_token(account, namespace, request).status
    assert status is not None, f"ServiceAccount {namespace}/{account}: TokenRequest answered without a status"
    return str(status.token)


def reader_account(api: client.ApiClient, namespace: str) -> None:
    """A ServiceAccount that may read ConfigMaps in ``namespace`` and nothing else."""
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    core.create_namespaced_service_account(namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="r")))
    rbac.create_namespaced_role(namespace, client.V1Role(
        metadata=client.V1ObjectMeta(name="r"),
        rules=[client.V1PolicyRule(api_groups=[""], resources=["configmaps"], verbs=["get", "list", "watch"])],
    ))  # fmt: skip
    rbac.create_namespaced_role_binding(namespace, client.V1RoleBinding(
        metadata=client.V1ObjectMeta(name="r"),
        role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role", name="r"),
        subjects=[client.RbacV1Subject(kind="ServiceAccount", name="r", namespace=namespace)],
    ))  # fmt: skip


def mount(folder: Path, token: str, ca: bytes) -> None:
    """Write the service-account folder as the kubelet's atomic writer does: the files live in a timestamped
    directory, ``..data`` links to it and is swapped by rename; ``token`` and ``ca.crt`` link through it."""
    folder.mkdir(exist_ok=True)
    version = folder / f"..{uuid.uuid4().hex}"
    version.mkdir()
    (version / "token").write_text(token)
    (version / "ca.crt").write_bytes(ca)
    (folder / "..data_tmp").symlink_to(version.name)
    os.replace(folder / "..data_tmp", folder / "..data")
    for name in ("token", "ca.crt"):
        if not (folder / name).is_symlink():
            (folder / name).symlink_to(f"..data/{name}")


def pod_environment(dev_cluster: LiveCluster, folder: Path, home: Path) -> dict[str, str]:
    server = urlsplit(yaml.safe_load(dev_cluster.kubeconfig.read_text())["clusters"][0]["cluster"]["server"])
    environment = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "GITOPSGUARD_TEST_KUBECONFIG")}
    home.mkdir()
    return environment | {"HOME": str(home), "KUBERNETES_SERVICE_HOST": str(server.hostname),
                          "KUBERNETES_SERVICE_PORT": str(server.port), DIR_VARIABLE: str(folder)}  # fmt: skip


def cluster_ca(dev_cluster: LiveCluster) -> bytes:
    return base64.b64decode(
        yaml.safe_load(dev_cluster.kubeconfig.read_text())["clusters"][0]["cluster"]["certificate-authority-data"]
    )


def refused(dev_cluster: LiveCluster, token: str, namespace: str) -> bool:
    """Whether the API server now refuses ``token`` (401)."""
    configuration = client.Configuration()
    configuration.host = dev_cluster.api().configuration.host
    configuration.ssl_ca_cert = dev_cluster.api().configuration.ssl_ca_cert
    configuration.api_key["authorization"] = f"Bearer {token}"
    try:
        client.CoreV1Api(client.ApiClient(configuration)).list_namespaced_config_map(namespace)
    except ApiException as error:
        return bool(error.status == 401)
    return False


def test_a_process_without_kubeconfig_connects_as_the_pods_account_and_survives_token_rotation(
    dev_cluster: LiveCluster, admin_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    core = client.CoreV1Api(admin_api)
    reader_account(admin_api, namespace)
    folder = tmp_path / "serviceaccount"
    first = bound_token(core, namespace, "r", "bound-1")
    mount(folder, first, cluster_ca(dev_cluster))
    environment = pod_environment(dev_cluster, folder, tmp_path / "home")
    info = subprocess.run([sys.executable, "-m", "gitopsguard", "cluster-info"], env=environment,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert info.returncode == 0, info.stderr
    assert "version: v1.20.2" in info.stdout
    probe = subprocess.Popen([sys.executable, "-c", PROBE, namespace], env=environment, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert probe.stdin is not None and probe.stdout is not None
    try:
        assert probe.stdout.readline().startswith("connected https://"), probe.stderr
        probe.stdin.write("ask\n")
        probe.stdin.flush()
        assert probe.stdout.readline().strip() == ALL_OK
        mount(folder, bound_token(core, namespace, "r", "bound-2"), cluster_ca(dev_cluster))
        core.delete_namespaced_secret("bound-1", namespace)
        deadline = time.monotonic() + 30
        while not refused(dev_cluster, first, namespace) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert refused(dev_cluster, first, namespace)  # the first token is revoked: only the new one can work
        for _ in range(2):  # the kept credential is refused once, then the new one asked for and sent
            probe.stdin.write("ask\n")
            probe.stdin.flush()
            assert probe.stdout.readline().strip() == ALL_OK
    finally:
        probe.kill()
        probe.communicate(timeout=10)


def test_a_process_with_neither_kubeconfig_nor_pod_account_is_refused_saying_what_to_give(
    dev_cluster: LiveCluster, tmp_path: Path
) -> None:
    environment = pod_environment(dev_cluster, tmp_path / "absent", tmp_path / "home")
    del environment["KUBERNETES_SERVICE_HOST"]
    done = subprocess.run([sys.executable, "-m", "gitopsguard", "cluster-info"], env=environment,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2
    assert "no kubeconfig, $KUBECONFIG is not set, and this is not a Pod" in done.stderr
    assert "--kubeconfig" in done.stderr
