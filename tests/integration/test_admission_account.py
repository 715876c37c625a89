"""The controller's own account, with exactly the RBAC manifests/ installs, keeps the webhook certificate
Secret and both configurations named gitopsguard, and cannot change another webhook configuration."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kubernetes import client

from gitopsguard.admission.certs import SECRET, CertificateStore
from gitopsguard.admission.configurations import API, WebhookSettings, configurations, keep, label_system_namespaces
from gitopsguard.cluster import connect
from gitopsguard.cluster.rest import RawApi
from gitopsguard.errors import AdmissionError
from tests.integration.conftest import LiveCluster
from tests.integration.test_controller_account import account_kubeconfig

pytestmark = pytest.mark.integration


@pytest.fixture
def controller(dev_cluster: LiveCluster, admin_api: client.ApiClient, tmp_path: Path) -> Iterator[RawApi]:
    path = account_kubeconfig(dev_cluster, admin_api, tmp_path, ("namespace.yaml", "controller-rbac.yaml",
                                                                 "admission.yaml"))  # fmt: skip
    admin = RawApi(admin_api)
    try:
        yield RawApi(connect(path, "controller"))
    finally:
        for plural in ("validatingwebhookconfigurations", "mutatingwebhookconfigurations"):
            admin.request("DELETE", f"{API}/{plural}/gitopsguard")
        admin.request("DELETE", f"/api/v1/namespaces/gitopsguard-system/secrets/{SECRET}")


def test_the_controller_account_keeps_its_certificate_and_configurations_and_no_others(
    controller: RawApi, admin_api: client.ApiClient
) -> None:
    certificates = CertificateStore(controller, "gitopsguard-system").ensure(["127.0.0.1"], datetime.now(UTC))
    again = CertificateStore(controller, "gitopsguard-system").ensure(["127.0.0.1"], datetime.now(UTC))
    assert again == certificates  # read back, not made again
    nowhere = ({"key": "gitopsguard.io/admission-test", "operator": "In", "values": [uuid.uuid4().hex]},)
    settings = WebhookSettings(url="https://127.0.0.1:1", also_match=nowhere)  # selects no namespace at all
    assert len(keep(controller, configurations(settings, frozenset({"Pod"}), certificates.bundle))) == 2
    settings = WebhookSettings(url="https://127.0.0.1:1", also_match=nowhere, timeout_seconds=3)
    assert len(keep(controller, configurations(settings, frozenset({"Pod"}), certificates.bundle))) == 2  # updated
    label_system_namespaces(controller)

    foreign = f"foreign-{uuid.uuid4().hex[:8]}"
    admin = RawApi(admin_api)
    body = configurations(WebhookSettings(name=foreign, url="https://127.0.0.1:1", also_match=nowhere),
                          frozenset({"Pod"}), certificates.bundle)[0]  # fmt: skip
    assert admin.request("POST", f"{API}/validatingwebhookconfigurations", body=body)[0] == 201
    try:
        changed = {**body, "webhooks": [{**body["webhooks"][0], "failurePolicy": "Ignore"}]}
        with pytest.raises(AdmissionError, match="cannot write it"):
            keep(controller, [changed])
    finally:
        admin.request("DELETE", f"{API}/validatingwebhookconfigurations/{foreign}")
