"""Why rbac-guard refuses aggregation: on the real control plane, a ClusterRole with no rules of its own and
an aggregationRule is filled by the controller-manager with the rules of every ClusterRole it selects."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from gitopsguard.model import Manifest, ObjectKey
from gitopsguard.policy.evaluate import evaluate
from gitopsguard.policy.load import load_policies
from gitopsguard.policy.model import DenyLevel
from tests.kube import as_model

pytestmark = pytest.mark.integration
POLICY = """\
apiVersion: gitopsguard.io/v1alpha1
kind: Policy
metadata: {name: rbac}
spec:
  builtin: {name: rbac-guard}
  enforcement: enforce
"""


@pytest.fixture
def collector(admin_api: client.ApiClient) -> Iterator[dict[str, Any]]:
    name = f"t-collector-{uuid.uuid4().hex[:8]}"
    body = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": name},
            "aggregationRule": {"clusterRoleSelectors": [
                {"matchLabels": {"rbac.authorization.k8s.io/aggregate-to-admin": "true"}}]},
            "rules": []}  # fmt: skip
    yield body
    try:
        client.RbacAuthorizationV1Api(admin_api).delete_cluster_role(name)
    except ApiException as error:
        if error.status != 404:
            raise


def test_an_aggregating_cluster_role_with_no_rules_gains_power_on_the_server_and_is_refused(
    admin_api: client.ApiClient, collector: dict[str, Any], tmp_path: Any
) -> None:
    rbac = client.RbacAuthorizationV1Api(admin_api)
    rbac.create_cluster_role(as_model(client.V1ClusterRole, collector))
    deadline = time.monotonic() + 15
    rules: list[client.V1PolicyRule] = []
    while time.monotonic() < deadline and not rules:
        time.sleep(0.3)
        rules = rbac.read_cluster_role(collector["metadata"]["name"]).rules or []
    granted = {(verb, resource) for r in rules for verb in r.verbs for resource in r.resources or []}
    assert ("create", "rolebindings") in granted and ("get", "secrets") in granted  # what admin holds

    (tmp_path / "rbac.yaml").write_text(POLICY)
    key = ObjectKey("rbac.authorization.k8s.io", "ClusterRole", "", collector["metadata"]["name"])
    result = evaluate([Manifest(key, collector, "roles.yaml")], load_policies(tmp_path), now=datetime.now(UTC),
                      deny_level=DenyLevel.HIGH)  # fmt: skip
    assert result.results[0].denied
