"""RawApi's writes against the real API server: the outcome and stored resourceVersion read from the answer
are what a read of the object says, for built-in kinds and custom resources alike."""

from __future__ import annotations

import time
import uuid
from typing import TypedDict

import pytest
from kubernetes import client

from gitopsguard.cluster.rest import RawApi
from tests.kube import as_model

pytestmark = pytest.mark.integration


class WriteOptions(TypedDict):
    content_type: str
    query: dict[str, str]


APPLY: WriteOptions = {
    "content_type": "application/apply-patch+yaml",
    "query": {"fieldManager": "gitopsguard", "force": "true"},
}


def deployment(namespace: str, **spec: object) -> dict[str, object]:
    labels = {"app": "web"}
    template = {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": "nginx:1.25"}]}}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": namespace},
            "spec": {"selector": {"matchLabels": labels}, "template": template, **spec}}  # fmt: skip


def test_a_write_reports_the_stored_resource_version(admin_api: client.ApiClient,
                                                                           namespace: str) -> None:  # fmt: skip
    # a ConfigMap, which no controller writes after us (a Deployment's status is written by the
    # controller-manager at once, so its version can move between our write and our read)
    raw = RawApi(admin_api)
    path = f"/api/v1/namespaces/{namespace}/configmaps/settings"
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": namespace},
            "data": {"a": "1"}}  # fmt: skip
    written = raw.write("PATCH", path, body=body, **APPLY)
    assert written.ok and written.status == 201
    _, stored = raw.request("GET", path)
    assert written.resource_version == stored["metadata"]["resourceVersion"]


def test_a_refused_write_reports_the_servers_own_message(admin_api: client.ApiClient, namespace: str) -> None:
    raw = RawApi(admin_api)
    path = f"/apis/apps/v1/namespaces/{namespace}/deployments/web"
    bad = deployment(namespace, replicas=-1)
    query = {**APPLY["query"], "dryRun": "All"}
    written = raw.write("PATCH", path, body=bad, content_type="application/apply-patch+yaml", query=query)
    status, answer = raw.request("PATCH", path, body=bad, content_type="application/apply-patch+yaml", query=query)
    assert (written.status, written.ok) == (status, False) == (422, False)
    assert written.message == answer["message"] and "spec.replicas" in written.message


def test_a_custom_resource_write_reports_its_resource_version(admin_api: client.ApiClient, namespace: str) -> None:
    group = f"t{uuid.uuid4().hex[:8]}.example.com"
    crds = client.ApiextensionsV1Api(admin_api)
    crds.create_custom_resource_definition(as_model(client.V1CustomResourceDefinition, {
        "metadata": {"name": f"gadgets.{group}"},
        "spec": {"group": group, "scope": "Namespaced", "names": {"plural": "gadgets", "kind": "Gadget"},
                 "versions": [{"name": "v1", "served": True, "storage": True,
                               "schema": {"openAPIV3Schema": {"type": "object",
                                                              "x-kubernetes-preserve-unknown-fields": True}}}]},
    }))  # fmt: skip
    try:
        raw, path = RawApi(admin_api), f"/apis/{group}/v1/namespaces/{namespace}/gadgets/g1"
        body = {"apiVersion": f"{group}/v1", "kind": "Gadget", "metadata": {"name": "g1"}, "spec": {"size": 3}}
        deadline = time.monotonic() + 30
        while (written := raw.write("PATCH", path, body=body, **APPLY)).status == 404:
            assert time.monotonic() < deadline, written
            time.sleep(0.2)
        assert written.ok, written
        assert written.resource_version == raw.request("GET", path)[1]["metadata"]["resourceVersion"]
    finally:
        crds.delete_custom_resource_definition(f"gadgets.{group}")
