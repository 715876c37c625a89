"""The live scan knows which Unit's policies govern which namespace (issue 19): a workload in a Unit's target
namespace is judged by the platform's policies and that Unit's own; one elsewhere by the platform's alone.
On the real API server, with the scanner ``run --root`` starts (``Fleet.governance`` feeds it)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from gitopsguard.cluster.apply import Applier
from gitopsguard.cluster.configmaps import ConfigMapStore
from gitopsguard.cluster.inventory import CONTROLLER_NAMESPACE
from gitopsguard.cluster.rest import RawApi
from gitopsguard.policy import PolicySet, parse_policies
from gitopsguard.policy.compose import governance, restricting
from gitopsguard.scan.scanner import Scanner
from gitopsguard.scan.state import state_name
from tests.integration.test_live_scan import deployment
from tests.integration.test_tenant_impersonation import make_namespace
from tests.kube import as_model
from tests.policies import team_label_policy

pytestmark = pytest.mark.integration

SCAN = "pol19-scan"
PLATFORM = parse_policies({"policies/audit.yaml": """\
apiVersion: gitopsguard.io/v1alpha1
kind: Policy
metadata: {name: replicas-known}
spec:
  match: {kinds: [Deployment]}
  validations: [{expression: "has(object.spec.replicas)"}]
  code: GG9
"""})  # fmt: skip


@pytest.fixture
def other(admin_api: client.ApiClient) -> Iterator[str]:
    name = make_namespace(admin_api)
    yield name
    client.CoreV1Api(admin_api).delete_namespace(name)
    ConfigMapStore(RawApi(admin_api), CONTROLLER_NAMESPACE).delete(state_name(name, SCAN))


def test_a_units_own_policy_judges_workloads_in_its_namespace_and_nowhere_else(
    admin_api: client.ApiClient, namespace: str, other: str, tmp_path: Path
) -> None:
    apps = client.AppsV1Api(admin_api)
    for where in (namespace, other):
        apps.create_namespaced_deployment(where, as_model(client.V1Deployment, deployment("stray", {})))
    own = parse_policies({"teams/a/policies/team.yaml": team_label_policy("1h")}, units=True)
    team = restricting(PLATFORM, own, unit="a.apps")
    found: list[tuple[str, str, str]] = []
    scanner = Scanner(Applier(admin_api), RawApi(admin_api), governance(PLATFORM, [("a.apps", namespace, team)]),
                      backup_dir=tmp_path, namespaces=frozenset({namespace, other}), unit=SCAN,
                      observe=lambda standing: found.extend(standing))  # fmt: skip
    try:
        scanner.scan_all()
        assert sorted(found) == [("a.apps/team-label", "HIGH", namespace)]
        assert scanner.non_compliant == 1
        evaluated = scanner.evaluations
        # the Unit applies a revision without its own policies: its namespace is the platform's alone again
        found.clear()
        scanner.set_policies(governance(PLATFORM, [("a.apps", namespace, restricting(PLATFORM, PolicySet(),
                                                                                     unit="a.apps"))]))  # fmt: skip
        assert found == [] and scanner.non_compliant == 0
        assert scanner.evaluations == evaluated + 1, "only the workloads of the namespace whose policies changed"
    finally:
        assert scanner.drain()
        ConfigMapStore(RawApi(admin_api), CONTROLLER_NAMESPACE).delete(state_name(namespace, SCAN))


def test_the_policy_set_in_force_polled_again_judges_nothing_again(
    admin_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    """The scan polls its policies every half second; a set without a digest (no policy folder at a revision)
    is the same set when it is the same object."""
    client.AppsV1Api(admin_api).create_namespaced_deployment(
        namespace, as_model(client.V1Deployment, deployment("stray", {})))  # fmt: skip
    undigested = PolicySet(parse_policies({"p.yaml": team_label_policy("1h")}).policies)
    scanner = Scanner(Applier(admin_api), RawApi(admin_api), undigested, backup_dir=tmp_path,
                      namespaces=frozenset({namespace}), unit=SCAN)  # fmt: skip
    try:
        scanner.scan_all()
        evaluated = scanner.evaluations
        for _ in range(3):
            scanner.set_policies(undigested)
        assert scanner.evaluations == evaluated
        scanner.set_policies(PolicySet(undigested.policies))  # another set, even with the same policies
        assert scanner.evaluations == evaluated + 1
    finally:
        assert scanner.drain()
        ConfigMapStore(RawApi(admin_api), CONTROLLER_NAMESPACE).delete(state_name(namespace, SCAN))
