"""The typed errors as the REAL API server produces them: each verb names the object, and an invalid
object's field-level causes survive the translation."""

from __future__ import annotations

import pytest
from kubernetes import client

from gitopsguard.cluster.rest import RawApi
from gitopsguard.errors import ConflictError, ForbiddenError, InvalidError, NotFoundError
from tests.integration.conftest import LiveCluster

pytestmark = pytest.mark.integration


def configmap(name: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"a": "1"}}


def test_a_missing_object_is_not_found_and_named(admin_api: client.ApiClient, namespace: str) -> None:
    subject = f"ConfigMap/{namespace}/absent"
    with pytest.raises(NotFoundError, match=rf'^{subject}: configmaps "absent" not found'):
        RawApi(admin_api).get(f"/api/v1/namespaces/{namespace}/configmaps/absent", subject)


def test_creating_an_object_twice_is_a_conflict(admin_api: client.ApiClient, namespace: str) -> None:
    raw, path = RawApi(admin_api), f"/api/v1/namespaces/{namespace}/configmaps"
    raw.call("POST", path, body=configmap("twice"))
    with pytest.raises(ConflictError, match=rf"^ConfigMap/{namespace}/twice: .*already exists"):
        raw.call("POST", path, f"ConfigMap/{namespace}/twice", body=configmap("twice"))


def test_an_invalid_name_is_invalid_with_the_servers_causes(admin_api: client.ApiClient, namespace: str) -> None:
    with pytest.raises(InvalidError) as refused:
        RawApi(admin_api).call("POST", f"/api/v1/namespaces/{namespace}/configmaps", "ConfigMap/x/Bad_Name",
                               body=configmap("Bad_Name"))  # fmt: skip
    assert str(refused.value).startswith("ConfigMap/x/Bad_Name: ")
    assert [c.get("field") for c in refused.value.causes] == ["metadata.name"]
    assert not refused.value.retryable


def test_a_user_without_rights_is_forbidden(dev_cluster: LiveCluster, namespace: str) -> None:
    with pytest.raises(ForbiddenError, match=rf"^Secret/{namespace}/s: .*forbidden.*; grant"):
        RawApi(dev_cluster.api("dev-alice")).get(f"/api/v1/namespaces/{namespace}/secrets/s", f"Secret/{namespace}/s")
