"""A tenant with ``edit`` in a Unit's namespace cannot steer the Unit: not suspend it (or another team's), not
hammer reconcile requests at it, not write its status (a dependent waits for its ``Ready`` condition, so that
would release the dependents early), not create, replace or delete Units.

Units are served as the root's render gives them (``units/root.as_served``), but the live object still adds
a suspension, a generation, a reconcile request, and the status dependents read: all of that is safe only
while tenants may not write Units. Kubernetes' ``edit`` and ``admin`` roles take a custom resource's rights
only from ClusterRoles labelled to aggregate into them; gitopsguard ships none for Units (checked over
``manifests/`` in ``tests/unit/redteam_units/test_no_manifest_lends_units_to_tenants.py``). These are the
server's answers to the tenant, on the real API server with the Unit CRD as ``manifests/`` installs it."""

from __future__ import annotations

from kubernetes import client

from gitopsguard.cluster.rest import RawApi
from tests.integration.redteam_units.conftest import Alice
from tests.integration.test_units_crd import UNITS, install_unit_crd, make_unit

MERGE = "application/merge-patch+json"


def test_a_tenant_with_edit_in_the_units_namespace_cannot_write_the_unit_its_status_or_any_unit(
    admin_api: client.ApiClient, alice: Alice
) -> None:
    admin = RawApi(admin_api)
    install_unit_crd(admin)
    make_unit(admin, alice.namespace, "apps", {"path": "teams/a"})
    units = UNITS.format(namespace=alice.namespace)
    tenant = RawApi(alice.api)
    attempts = {
        "suspend": ("PATCH", f"{units}/apps", {"spec": {"suspend": True}}),
        "reconcile request": ("PATCH", f"{units}/apps",
                              {"metadata": {"annotations": {"reconcile.gitopsguard.io/requestedAt": "now"}}}),
        "status": ("PATCH", f"{units}/apps/status", {"status": {"conditions": [
            {"type": "Ready", "status": "True", "reason": "ReconciliationSucceeded", "message": "forged",
             "lastTransitionTime": "2026-01-01T00:00:00Z"}], "observedGeneration": 1}}),
        "create": ("POST", units, {"apiVersion": "gitopsguard.io/v1alpha1", "kind": "Unit",
                                   "metadata": {"name": "mine"}, "spec": {"path": "teams/b"}}),
        "delete": ("DELETE", f"{units}/apps", None),
    }  # fmt: skip
    answers = {}
    for what, (method, path, body) in attempts.items():
        status, _ = tenant.request(
            method, path, body=body, content_type=MERGE if method == "PATCH" else "application/json"
        )
        answers[what] = status
    assert answers == dict.fromkeys(attempts, 403), answers
    unit = admin.get(f"{units}/apps")
    assert "suspend" not in unit["spec"] and "status" not in unit, unit
