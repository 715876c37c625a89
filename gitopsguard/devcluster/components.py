"""The three control-plane components, their command lines, and how to tell each one is ready."""

from __future__ import annotations

import json
import shutil
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass

from gitopsguard.devcluster.node_config import SERVICE_CIDR
from gitopsguard.devcluster.paths import CacheLayout, StateLayout
from gitopsguard.devcluster.pki import ADMISSION_CONFIG
from gitopsguard.devcluster.ports import LOOPBACK
from gitopsguard.devcluster.process import ComponentSpec
from gitopsguard.errors import MissingDependencyError

ETCD = "etcd"
APISERVER = "kube-apiserver"
CONTROLLER_MANAGER = "kube-controller-manager"
COMPONENTS = (ETCD, APISERVER, CONTROLLER_MANAGER)

# Controllers that need nodes, clouds or volumes; without a kubelet they would only log errors.
_DISABLED_CONTROLLERS = (
    "nodeipam", "nodelifecycle", "cloud-node-lifecycle", "service", "route",
    "attachdetach", "persistentvolume-binder", "persistentvolume-expander",
)  # fmt: skip


@dataclass(frozen=True)
class Ports:
    """Where the cluster listens. With a node, the API server listens on the node's bridge address (Pods must
    reach it through the ``kubernetes`` Service) and kube-scheduler's health port is set; else both are off."""

    etcd_client: int
    etcd_peer: int
    apiserver: int
    apiserver_host: str = LOOPBACK
    scheduler: int = 0

    @property
    def has_node(self) -> bool:
        return self.apiserver_host != LOOPBACK

    def server_url(self) -> str:
        return f"https://{self.apiserver_host}:{self.apiserver}"


def component_spec(name: str, cache: CacheLayout, state: StateLayout, ports: Ports) -> ComponentSpec:
    if name == ETCD:
        return _etcd(state, ports)
    if name == APISERVER:
        return _apiserver(cache, state, ports)
    return _controller_manager(cache, state, ports.has_node)


def _etcd(state: StateLayout, ports: Ports) -> ComponentSpec:
    etcd = shutil.which("etcd")
    if etcd is None:
        raise MissingDependencyError(
            "etcd not found on PATH; install Debian's etcd-server (apt-get install etcd-server)"
        )
    client, peer = f"http://{LOOPBACK}:{ports.etcd_client}", f"http://{LOOPBACK}:{ports.etcd_peer}"
    return ComponentSpec(ETCD, (
        etcd, "--name", "gitopsguard-dev", "--data-dir", str(state.etcd_data),
        "--listen-client-urls", client, "--advertise-client-urls", client,
        "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
        "--initial-cluster", f"gitopsguard-dev={peer}",
    ))  # fmt: skip


def _apiserver(cache: CacheLayout, state: StateLayout, ports: Ports) -> ComponentSpec:
    pki, host = state.pki_dir, ports.apiserver_host
    return ComponentSpec(APISERVER, (
        str(cache.binary(APISERVER)),
        "--etcd-servers", f"http://{LOOPBACK}:{ports.etcd_client}",
        "--bind-address", host, "--secure-port", str(ports.apiserver), "--advertise-address", host,
        "--cert-dir", str(pki), "--token-auth-file", str(state.tokens_file), *_node_flags(ports),
        "--service-account-key-file", str(pki / "sa.pub"),
        "--service-account-signing-key-file", str(pki / "sa.key"),
        "--service-account-issuer", "https://kubernetes.default.svc",
        "--service-cluster-ip-range", SERVICE_CIDR, "--allow-privileged=true", *_audit_flags(state),
        *_webhook_client_flags(state),
    ))  # fmt: skip


def _node_flags(ports: Ports) -> tuple[str, ...]:
    """With a node: the Node authorizer and NodeRestriction confine the kubelet's identity to its own Node and
    Pods, and the API server dials a Service's endpoints itself (webhooks behind Services, no ClusterIP)."""
    if not ports.has_node:
        return ("--authorization-mode", "RBAC")
    return ("--authorization-mode", "Node,RBAC", "--enable-admission-plugins", NODE_ADMISSION,
            "--enable-aggregator-routing=true")  # fmt: skip


# PodTolerationRestriction: a namespace's ``scheduler.alpha.kubernetes.io/defaultTolerations`` annotation is
# added to its Pods, so a tainted node can be opened to chosen namespaces only (the test harness does).
NODE_ADMISSION = "NodeRestriction,PodTolerationRestriction"


def _audit_flags(state: StateLayout) -> tuple[str, ...]:
    if not state.audit_policy.exists():
        return ()
    return ("--audit-policy-file", str(state.audit_policy), "--audit-log-path", str(state.audit_log),
            "--audit-log-maxsize", "100", "--audit-log-maxbackup", "1")  # fmt: skip


def _webhook_client_flags(state: StateLayout) -> tuple[str, ...]:
    """The client certificate the API server shows webhooks (pki.ensure_webhook_client), when the cluster has
    one: a cluster made before it had none, and keeps working without it until it is made anew."""
    config = state.pki_dir / ADMISSION_CONFIG
    return ("--admission-control-config-file", str(config)) if config.exists() else ()


AUDIT_POLICY = """\
# Who wrote what, at Metadata level (never a body): gitopsguard names the user behind a drift from it.
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: None
    verbs: [get, list, watch]
  - level: None
    resources:
      - {group: "", resources: [events]}
      - {group: coordination.k8s.io, resources: [leases]}
  - level: Metadata
"""


def _controller_manager(cache: CacheLayout, state: StateLayout, has_node: bool) -> ComponentSpec:
    # With a node, the node-lifecycle controller runs: the API server's TaintNodesByCondition admission taints
    # every new Node not-ready, and only that controller lifts the taint once the kubelet reports Ready.
    disabled = tuple(name for name in _DISABLED_CONTROLLERS if not (has_node and name == "nodelifecycle"))
    return ComponentSpec(CONTROLLER_MANAGER, (
        str(cache.binary(CONTROLLER_MANAGER)),
        "--kubeconfig", str(state.kubeconfig), "--leader-elect=false",
        "--service-account-private-key-file", str(state.pki_dir / "sa.key"),
        "--root-ca-file", str(state.apiserver_cert),
        "--bind-address", LOOPBACK, "--secure-port", "0", "--port", "0",
        "--controllers", ",".join(("*", *(f"-{name}" for name in disabled))),
    ))  # fmt: skip


def etcd_healthy(ports: Ports) -> bool:
    try:
        with urllib.request.urlopen(f"http://{LOOPBACK}:{ports.etcd_client}/health", timeout=2) as response:
            return bool(json.loads(response.read()).get("health") == "true")
    except (OSError, ValueError):
        return False


def apiserver_get(state: StateLayout, ports: Ports, token: str, path: str) -> tuple[int, str]:
    """GET ``path`` as the token's user; (0, reason) when the server cannot be reached at all."""
    try:
        context = ssl.create_default_context(cafile=str(state.apiserver_cert))
    except (OSError, ssl.SSLError) as error:
        return 0, f"no serving certificate yet ({error})"
    url = ports.server_url() + path  # always https://127.0.0.1:<port>/...
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=3, context=context) as response:  # noqa: S310
            return int(response.status), response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return int(error.code), error.read().decode(errors="replace")
    except OSError as error:
        return 0, str(error)


def apiserver_ready(state: StateLayout, ports: Ports, token: str) -> bool:
    return apiserver_get(state, ports, token, "/readyz")[0] == 200


def controller_manager_ready(state: StateLayout, ports: Ports, token: str) -> bool:
    """The service-account controller has made ``default/default``: controllers are running."""
    path = "/api/v1/namespaces/default/serviceaccounts/default"
    return apiserver_get(state, ports, token, path)[0] == 200
