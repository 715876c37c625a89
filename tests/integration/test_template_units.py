"""repo-template/'s Units layout served on the real API server (issue 19), by the controller's own account.

A copy of repo-template/ is the repository, its names made unique (``shop`` -> ``tu1a2b3c-shop``, folders too,
so that tests running beside this one keep their namespaces); gitopsguard acts with the token of the account
manifests/ installs, plus what operator/units-rbac.yaml adds, and serves ``--root clusters/dev-units`` as
``run --root`` does (``Fleet`` on a thread). No node: the Pods never run, so no Unit waits for health."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import IO, Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from gitopsguard.cluster import connect
from gitopsguard.cluster.apply import Applier
from gitopsguard.cluster.inventory import CONTROLLER_NAMESPACE, InventoryStore
from gitopsguard.cluster.rest import RawApi
from gitopsguard.cluster.units import UnitStore
from gitopsguard.errors import NotFoundError
from gitopsguard.fleet import Fleet, accounts
from gitopsguard.reconcile import Unit
from gitopsguard.source import GitSource, SourceSpec
from tests.gitrepo import Upstream
from tests.integration.conftest import LiveCluster
from tests.integration.test_controller_account import account_kubeconfig
from tests.integration.test_units_crd import install_unit_crd
from tests.kube import close, meta
from tests.kubectl import kubectl
from tests.waiting import eventually

pytestmark = pytest.mark.integration
TEMPLATE = Path(__file__).parents[2] / "repo-template"
NAMES = re.compile(r"\b(shop|payments|platform)\b")
CONTROLLER = "system:serviceaccount:gitopsguard-system:gitopsguard"
OPERATOR_RBAC = TEMPLATE / "operator" / "units-rbac.yaml"
STOLEN = """\
apiVersion: v1
kind: ConfigMap
metadata: {{name: stolen, namespace: {namespace}}}
data: {{value: "1"}}
"""


def copy_renamed(into: Path, prefix: str) -> None:
    """repo-template/ into ``into``, each team and platform name (in paths and in YAML) given ``prefix``."""
    for source in sorted(p for p in TEMPLATE.rglob("*") if p.is_file()):
        relative = NAMES.sub(lambda m: f"{prefix}-{m[1]}", source.relative_to(TEMPLATE).as_posix())
        target = into / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        text = source.read_text()
        target.write_text(NAMES.sub(lambda m: f"{prefix}-{m[1]}", text) if source.suffix == ".yaml" else text)


@dataclass
class AuditTail:
    """The API server's audit events written after it was opened; follows the log across a rotation."""

    path: Path
    events: list[dict[str, Any]] = field(default_factory=list)
    _handle: IO[bytes] | None = None
    _rest: bytes = b""

    def __post_init__(self) -> None:
        self._handle = self.path.open("rb")
        self._handle.seek(0, os.SEEK_END)

    def read(self) -> list[dict[str, Any]]:
        assert self._handle is not None
        while True:
            rotated = self.path.stat().st_ino != os.fstat(self._handle.fileno()).st_ino
            self._take(self._handle.read())
            if not rotated:
                return self.events
            self._handle.close()  # rotated: the old file is drained, the new one read from its start
            self._handle, self._rest = self.path.open("rb"), b""

    def _take(self, data: bytes) -> None:
        *lines, self._rest = (self._rest + data).split(b"\n")
        self.events += [json.loads(line) for line in lines if line.strip()]

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()


def writes(events: list[dict[str, Any]], namespace: str, resource: str, name: str) -> list[tuple[str, str]]:
    """(user, impersonated user or "") of each write the server accepted to an object (not its status, not a
    dry run). By name: the controller-manager writes objects of its own in every namespace (kube-root-ca.crt)."""
    wanted = {"namespace": namespace, "resource": resource, "name": name}
    return [
        (e["user"]["username"], (e.get("impersonatedUser") or {}).get("username", ""))
        for e in events
        if {k: (e.get("objectRef") or {}).get(k) for k in wanted} == wanted
        and not (e.get("objectRef") or {}).get("subresource")
        and e.get("verb") in ("create", "patch")
        and "dryRun" not in e.get("requestURI", "")
        and (e.get("responseStatus") or {}).get("code", 500) < 300
    ]


@dataclass
class Served:
    upstream: Upstream
    prefix: str
    fleet: Fleet
    units: UnitStore
    audit: AuditTail

    def name(self, word: str) -> str:
        return f"{self.prefix}-{word}"

    def ready(self, namespace: str, name: str) -> dict[str, Any]:
        try:
            conditions = self.units.get(namespace, name).status.get("conditions") or []
        except NotFoundError:  # the root has not applied it yet
            return {}
        return next((c for c in conditions if c.get("type") == "Ready"), {})

    def said(self, namespace: str, name: str) -> str:
        """The Unit's last failure, whole (``lastError``: its conditions hold the first line), else Ready's message."""
        try:
            error = self.units.get(namespace, name).status.get("lastError")
        except NotFoundError:
            return ""
        return str(error or self.ready(namespace, name).get("message") or "")


def _apply(cluster: LiveCluster, path: Path) -> None:
    subprocess.run([kubectl(), "--kubeconfig", str(cluster.kubeconfig), "apply", "--server-side", "--force-conflicts",
                    "-f", str(path)], check=True, capture_output=True)  # fmt: skip


def _delete_all(admin_api: client.ApiClient, prefix: str) -> None:
    """The namespaces, the Units' inventories, and what operator/units-rbac.yaml installed."""
    core, rbac = client.CoreV1Api(admin_api), client.RbacAuthorizationV1Api(admin_api)
    stored = core.list_namespaced_config_map(CONTROLLER_NAMESPACE).items
    names = [str(meta(m).name) for m in stored]
    inventories = [n for n in names if n.startswith(f"gitopsguard-inventory-{prefix}-")]
    deletes: list[Callable[[], object]] = [
        *(partial(core.delete_namespace, f"{prefix}-{n}") for n in ("shop", "payments", "platform")),
        *(partial(core.delete_namespaced_config_map, n, CONTROLLER_NAMESPACE) for n in inventories),
        partial(rbac.delete_cluster_role_binding, "gitopsguard-units-rbac"),
        partial(rbac.delete_cluster_role, "gitopsguard-units-rbac"),
        partial(rbac.delete_cluster_role, "gitopsguard-tenant"),
    ]
    for delete in deletes:
        try:
            delete()
        except ApiException as error:
            if error.status != 404:
                raise


@pytest.fixture
def served(dev_cluster: LiveCluster, admin_api: client.ApiClient, tmp_path: Path) -> Iterator[Served]:
    if not dev_cluster.audit_log.exists():
        pytest.skip("the reused cluster writes no audit log (who wrote what is read from it)")
    install_unit_crd(RawApi(admin_api))
    kubeconfig = account_kubeconfig(dev_cluster, admin_api, tmp_path,
                                    ("namespace.yaml", "crds/unit.yaml", "controller-rbac.yaml"))  # fmt: skip
    _apply(dev_cluster, OPERATOR_RBAC)
    prefix = f"tu{uuid.uuid4().hex[:6]}"
    upstream = Upstream(tmp_path / "git")
    copy_renamed(upstream.work, prefix)
    upstream.commit()
    audit = AuditTail(dev_cluster.audit_log)
    api = connect(kubeconfig)
    own = Applier(api)
    fleet = Fleet(Unit(f"{prefix}-root", "clusters/dev-units", f"{prefix}-platform", policies_path="policies"),
                  GitSource(SourceSpec(upstream.url), tmp_path / "gg"), own, InventoryStore(api), RawApi(api),
                  interval=60, account_of=accounts(own))  # fmt: skip
    stop = threading.Event()
    thread = threading.Thread(target=fleet.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield Served(upstream, prefix, fleet, UnitStore(RawApi(admin_api)), audit)
    finally:
        stop.set()
        fleet.wake()
        thread.join(20)
        audit.close()
        with contextlib.suppress(Exception):
            close(api)
        _delete_all(admin_api, prefix)
    assert not thread.is_alive(), "the loop stops when asked"


def _all_ready(served: Served) -> bool:
    platform, shop, payments = (served.name(w) for w in ("platform", "shop", "payments"))
    return all(served.ready(n, n).get("status") == "True" for n in (platform, shop, payments))


def test_the_templates_units_are_ready_and_each_team_unit_writes_as_its_own_account(
    served: Served, admin_api: client.ApiClient, dev_cluster: LiveCluster
) -> None:
    eventually(lambda: _all_ready(served), 120, every=0.5)
    listed = subprocess.run([kubectl(), "--kubeconfig", str(dev_cluster.kubeconfig), "get", "units", "-A"],
                            capture_output=True, text=True, check=True).stdout  # fmt: skip
    rows = {tuple(line.split()[:3]) for line in listed.splitlines()}
    assert {(served.name(n), served.name(n), "True") for n in ("platform", "shop", "payments")} <= rows, listed
    apps = client.AppsV1Api(admin_api)
    for team in ("shop", "payments"):
        namespace = served.name(team)
        deployment = apps.read_namespaced_deployment(namespace, namespace)
        assert deployment.spec is not None and deployment.spec.replicas == 1
        assert (meta(deployment).labels or {})["team"] == namespace
    account = {team: f"system:serviceaccount:{served.name(team)}:{served.name(team)}-deployer"
               for team in ("shop", "payments")}  # fmt: skip

    def team_writes(events: list[dict[str, Any]], team: str, resource: str, name: str = "") -> set[tuple[str, str]]:
        return set(writes(events, served.name(team), resource, served.name(team) + name))

    def attributed() -> bool:
        events = served.audit.read()
        return all(team_writes(events, t, "deployments") for t in account) and bool(
            team_writes(events, "shop", "rolebindings", "-deployer"))  # fmt: skip

    eventually(attributed, 30, every=0.5)  # the audit backend writes in batches
    events = served.audit.read()
    for team, user in account.items():
        assert team_writes(events, team, "deployments") == {(CONTROLLER, user)}, team
        assert team_writes(events, team, "configmaps", "-settings") == {(CONTROLLER, user)}, team
        # the platform Unit wrote the team's account and its binding as gitopsguard itself, impersonating nobody
        assert team_writes(events, team, "rolebindings", "-deployer") == {(CONTROLLER, "")}, team
        assert team_writes(events, team, "serviceaccounts", "-deployer") == {(CONTROLLER, "")}, team


def test_a_team_unit_writing_into_the_other_teams_namespace_is_refused_and_nothing_of_it_is_applied(
    served: Served, admin_api: client.ApiClient
) -> None:
    """shop's folder (apps/<shop>/dev, which shop's leads approve alone) gains a ConfigMap in payments'
    namespace, and changes its own settings in the same commit: the API server refuses shop's account, and
    the dry run, as that account too, keeps the whole revision out."""
    eventually(lambda: _all_ready(served), 120, every=0.5)
    shop, payments = served.name("shop"), served.name("payments")
    core = client.CoreV1Api(admin_api)
    overlay = f"apps/{shop}/dev"
    kustomization = (served.upstream.work / overlay / "kustomization.yaml").read_text()
    served.upstream.write(f"{overlay}/stolen.yaml", STOLEN.format(namespace=payments))
    served.upstream.write(f"{overlay}/kustomization.yaml", kustomization.replace(
        "  - ../base\n", "  - ../base\n  - stolen.yaml\n").replace("value: debug", "value: warn"))  # fmt: skip
    served.upstream.commit("shop reaches into payments")
    served.fleet.wake()
    eventually(lambda: served.ready(shop, shop).get("status") == "False", 60, every=0.5)
    said = served.said(shop, shop)
    assert f"ConfigMap/{payments}/stolen" in said and "forbidden" in said, said
    assert f"system:serviceaccount:{shop}:{shop}-deployer" in said, said
    with pytest.raises(ApiException) as absent:
        core.read_namespaced_config_map("stolen", payments)
    assert absent.value.status == 404
    settings = core.read_namespaced_config_map(f"{shop}-settings", shop)
    assert (settings.data or {})["LOG_LEVEL"] == "debug", "nothing of the refused revision is applied"
    assert served.ready(payments, payments).get("status") == "True", "the other team goes on"


ESCALATION = """\
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: more, namespace: {namespace}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: admin}}
subjects:
  - {{kind: ServiceAccount, name: {namespace}-deployer, namespace: {namespace}}}
"""
MINTED = """\
apiVersion: gitopsguard.io/v1alpha1
kind: Unit
metadata: {{name: mine, namespace: {namespace}}}
spec: {{path: {platform}}}
"""


@pytest.mark.parametrize(
    ("attack", "refusal"),
    [
        (ESCALATION, 'forbidden: User "system:serviceaccount:{ns}:{ns}-deployer"'),
        (MINTED, "a Unit may be declared in the root path only"),
    ],
    ids=["grants-itself-admin", "mints-a-unit-acting-as-gitopsguard"],
)
def test_a_team_folder_that_widens_its_own_rights_is_refused_and_nothing_of_it_is_applied(
    served: Served, admin_api: client.ApiClient, attack: str, refusal: str
) -> None:
    """payments' leads approve apps/<payments>/ alone. Through it they try to bind `admin` to their account in
    their own namespace (the gate lets a binding to `admin` pass: the API server refuses their account, which
    the message names: gitopsguard would be refused too, lacking `admin`'s Secrets), or to
    declare a Unit without an account (gitopsguard's own) over platform/: the revision is refused whole."""
    eventually(lambda: _all_ready(served), 120, every=0.5)
    payments = served.name("payments")
    overlay = f"apps/{payments}/dev"
    kustomization = (served.upstream.work / overlay / "kustomization.yaml").read_text()
    served.upstream.write(f"{overlay}/more.yaml", attack.format(namespace=payments, platform=served.name("platform")))
    served.upstream.write(f"{overlay}/kustomization.yaml", kustomization.replace(
        "  - ../base\n", "  - ../base\n  - more.yaml\n").replace("value: debug", "value: warn"))  # fmt: skip
    served.upstream.commit("payments widens its rights")
    served.fleet.wake()
    eventually(lambda: served.ready(payments, payments).get("status") == "False", 60, every=0.5)
    assert refusal.format(ns=payments) in served.said(payments, payments)
    core = client.CoreV1Api(admin_api)
    settings = core.read_namespaced_config_map(f"{payments}-settings", payments)
    assert (settings.data or {})["LOG_LEVEL"] == "debug", "nothing of the refused revision is applied"
    bindings = client.RbacAuthorizationV1Api(admin_api).list_namespaced_role_binding(payments).items
    assert "more" not in {meta(b).name for b in bindings}
    assert [u.name for u in served.units.list(payments)] == [payments]
