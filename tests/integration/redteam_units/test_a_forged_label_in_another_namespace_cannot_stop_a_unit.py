"""A tenant stops another team's Unit with one object of its own namespace.

A Unit's pass lists what it owns by its label alone, across the cluster (``Applier.list_owned``: the shared
watch's view, and prune always lists afresh), and anyone who may label an object may file it under any
Unit's id. Tenant alice may create Gadgets (a custom resource kind, as a tenant may create cert-manager
Certificates) in her own namespace only; the ``apps`` Unit of another namespace applies a Gadget too. Alice
creates one Gadget nested 1,500 levels deep (the API server stores it; no client parses it:
``tests/integration/test_deep_objects.py``) and labels it ``gitopsguard.io/unit: <apps' id>``. Every list
of apps' Gadgets now fails, and with it every pass of apps: its next commit is never applied. A list of
what a Unit owns scoped to the namespaces its inventory names (or an unparseable object outside them
skipped) would keep other namespaces out of it."""

from __future__ import annotations

import json
import time

from kubernetes import client

from gitopsguard.cluster.rest import RawApi, Request
from gitopsguard.model import UNIT_LABEL
from tests.integration.conftest import bind_user
from tests.integration.redteam_units.conftest import Alice
from tests.integration.test_deep_objects import DEEP
from tests.integration.test_units_loop import Running, commit, configmap
from tests.waiting import eventually, value_of


def gadget(group: str, namespace: str, name: str, labels: dict[str, str], spec: str) -> bytes:
    metadata = json.dumps({"name": name, "namespace": namespace, "labels": labels})
    return f'{{"apiVersion": "{group}/v1", "kind": "Gadget", "metadata": {metadata}, "spec": {spec}}}'.encode()


def create(raw: RawApi, group: str, namespace: str, body: bytes) -> None:
    request = Request("POST", f"/apis/{group}/v1/namespaces/{namespace}/gadgets", {}, body)
    deadline = time.monotonic() + 30
    while (answer := raw.send_all([request], 1)[0]).status == 404:  # the CRD is not served yet
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert answer.status == 201, answer


def test_an_unreadable_object_labelled_with_a_units_id_in_another_namespace_does_not_stop_its_passes(
    running: Running,
    admin_api: client.ApiClient,
    namespace: str,
    alice: Alice,
    gadgets: str,
) -> None:
    core = client.CoreV1Api(admin_api)
    rbac = client.RbacAuthorizationV1Api(admin_api)
    rbac.create_namespaced_role(
        alice.namespace,
        client.V1Role(
            metadata=client.V1ObjectMeta(name="gadgets"),
            rules=[client.V1PolicyRule(api_groups=[gadgets], resources=["gadgets"], verbs=["create", "get", "list"])],
        ),
    )
    bind_user(admin_api, alice.namespace, "alice-gadgets", "Role", "gadgets", user="alice")
    own = gadget(gadgets, namespace, "tool", {}, '{"size": 1}').decode()
    commit(running, {"apps/gadget.yaml": own})
    eventually(lambda: running.ready("apps").get("status") == "True"
               and running.unit("apps").status.get("objects") == 2, 90, every=0.5)  # fmt: skip
    bait = gadget(gadgets, alice.namespace, "bait", {UNIT_LABEL: f"{namespace}.apps"}, DEEP)
    create(RawApi(alice.api), gadgets, alice.namespace, bait)
    commit(running, {"apps/cm.yaml": configmap("apps", namespace, "2")})
    eventually(lambda: value_of(core, "apps", namespace) == "2" or running.ready("apps").get("status") == "False",
               60, every=0.5)  # fmt: skip
    time.sleep(3)  # a pass that applied but failed to prune says so just after
    assert value_of(core, "apps", namespace) == "2", running.ready("apps")
    assert running.ready("apps").get("status") == "True", running.ready("apps")
