"""Every replica keeps the webhook configurations. On the node, two controller Pods starting together both found
none and both created it: the second got "already exists", exited, and was restarted by the kubelet, and the
API server's calls routed to it were refused meanwhile (seen in test_incluster_install.py as restartCount 1).
Here the race is made certain on the real API server: the replica's read says "absent" (as it did, a moment
before the other replica's create), and its create meets the other's configuration."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from gitopsguard.admission.configurations import API, keep, remove
from gitopsguard.cluster.rest import RawApi
from gitopsguard.errors import NotFoundError

pytestmark = pytest.mark.integration


class ReadBeforeTheOtherReplica(RawApi):
    """The API server as a replica saw it: the first read of the configuration comes before another replica
    created it. Every other request (the create that follows, later reads) goes to the real server."""

    def __init__(self, api: client.ApiClient) -> None:
        super().__init__(api)
        self.stale_reads = 1

    def get(self, path: str, subject: str = "", *, query: dict[str, str] | None = None) -> dict[str, Any]:
        if self.stale_reads:
            self.stale_reads -= 1
            raise NotFoundError(f"{subject}: not found")
        return super().get(path, subject, query=query)


@pytest.fixture
def name(admin_api: client.ApiClient) -> Iterator[str]:
    chosen = f"gitopsguard-race-{uuid.uuid4().hex[:8]}"
    yield chosen
    remove(RawApi(admin_api), chosen)


def configuration(name: str, webhook: str = "race.gitopsguard.io") -> dict[str, Any]:
    """A configuration that judges nothing: its one webhook matches namespaces carrying a label nobody has."""
    rule = {"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"]}
    hook = {"name": webhook, "admissionReviewVersions": ["v1"], "sideEffects": "None", "rules": [rule],
            "clientConfig": {"url": "https://127.0.0.1:1/validate"}, "failurePolicy": "Ignore",
            "namespaceSelector": {"matchLabels": {"nobody": name}}}  # fmt: skip
    return {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": name}, "webhooks": [hook]}  # fmt: skip


def test_a_configuration_another_replica_created_first_is_read_again_not_an_error(
    admin_api: client.ApiClient, name: str
) -> None:
    RawApi(admin_api).call("POST", f"{API}/validatingwebhookconfigurations", body=configuration(name))  # the other
    late = ReadBeforeTheOtherReplica(admin_api)
    keep(late, [configuration(name)])  # read again and kept (the server's defaults differ from the body)
    assert late.stale_reads == 0
    live = RawApi(admin_api).get(f"{API}/validatingwebhookconfigurations/{name}")
    assert [w["name"] for w in live["webhooks"]] == ["race.gitopsguard.io"]


def test_a_configuration_another_replica_created_differently_is_replaced_after_reading_it_again(
    admin_api: client.ApiClient, name: str
) -> None:
    RawApi(admin_api).call(
        "POST", f"{API}/validatingwebhookconfigurations", body=configuration(name, "other.race.gitopsguard.io")
    )
    mine = configuration(name)
    assert keep(ReadBeforeTheOtherReplica(admin_api), [mine]) == [f"ValidatingWebhookConfiguration/{name}"]
    live = RawApi(admin_api).get(f"{API}/validatingwebhookconfigurations/{name}")
    assert [w["name"] for w in live["webhooks"]] == ["race.gitopsguard.io"]
