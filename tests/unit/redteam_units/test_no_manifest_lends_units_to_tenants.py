"""No ClusterRole that ``manifests/`` installs lends a right on Units to Kubernetes' ``edit``, ``admin`` or
``view`` roles (``rbac.authorization.k8s.io/aggregate-to-*``): a tenant with ``edit`` in a Unit's namespace
could then suspend the Unit, hammer reconcile requests at it, or write the status its dependents wait on.
Reading Units (``view``) would be harmless, writing them is not; the server's side of it is
``tests/integration/redteam_units/test_a_tenant_cannot_steer_a_unit_through_the_api.py``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

MANIFESTS = Path(__file__).parents[3] / "manifests"
READ = {"get", "list", "watch"}


def cluster_roles() -> Iterator[tuple[str, dict[str, Any]]]:
    for path in sorted(MANIFESTS.rglob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if isinstance(document, dict) and document.get("kind") == "ClusterRole":
                yield f"{path.relative_to(MANIFESTS)}: ClusterRole/{document['metadata']['name']}", document


def writes_units(rule: dict[str, Any]) -> bool:
    groups, resources = set(rule.get("apiGroups") or ()), set(rule.get("resources") or ())
    ours = groups & {"gitopsguard.io", "*"} and resources & {"units", "units/status", "*"}
    return bool(ours) and not set(rule.get("verbs") or ()) <= READ


def test_the_manifests_hold_cluster_roles_to_check() -> None:
    assert any(True for _ in cluster_roles()), "manifests/ holds no ClusterRole: this test reads the wrong folder"


@pytest.mark.parametrize(("where", "role"), list(cluster_roles()), ids=lambda x: x if isinstance(x, str) else "")
def test_no_cluster_role_aggregated_into_a_tenants_role_writes_units(where: str, role: dict[str, Any]) -> None:
    labels = (role.get("metadata") or {}).get("labels") or {}
    lends = [k for k, v in labels.items() if k.startswith("rbac.authorization.k8s.io/aggregate-to-") and v == "true"]
    if lends:
        assert not any(writes_units(rule) for rule in role.get("rules") or ()), f"{where} lends Units to {lends}"
