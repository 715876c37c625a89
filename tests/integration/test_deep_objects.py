"""Attack: whoever may write a custom resource nests it 1,500 levels deep. The API server stores and serves it;
Python's json raises RecursionError on it (not ValueError). Before the edge refused such answers, that
escaped every reader (a get, the informer's watch), and a list holding one read as an EMPTY list: the
objects of that kind looked gone. Each reader now gets a ClusterError naming what it read."""

from __future__ import annotations

import threading
import time

import pytest
from kubernetes import client

from gitopsguard.cluster.apply import Applier
from gitopsguard.cluster.rest import RawApi, Request
from gitopsguard.errors import ApplyError, ClusterError

pytestmark = pytest.mark.integration

DEEP = "[" * 1500 + "]" * 1500


def create(raw: RawApi, group: str, namespace: str, name: str, spec: str) -> None:
    body = f'{{"apiVersion": "{group}/v1", "kind": "Gadget", "metadata": {{"name": "{name}"}}, "spec": {spec}}}'
    request = Request("POST", f"/apis/{group}/v1/namespaces/{namespace}/gadgets", {}, body.encode())
    deadline = time.monotonic() + 30
    while (answer := raw.send_all([request], 1)[0]).status == 404:  # the CRD is not served yet
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert answer.status == 201, answer


def test_reading_an_object_nested_past_the_parser_is_a_cluster_error_naming_it(
    admin_api: client.ApiClient, namespace: str, gadgets: str
) -> None:
    raw = RawApi(admin_api)
    create(raw, gadgets, namespace, "deep", DEEP)
    path = f"/apis/{gadgets}/v1/namespaces/{namespace}/gadgets/deep"
    with pytest.raises(ClusterError, match=f"^Gadget/{namespace}/deep: the answer is nested deeper"):
        raw.get(path, f"Gadget/{namespace}/deep")
    with pytest.raises(ClusterError, match="nested deeper"):
        raw.request("GET", path)


def test_a_list_holding_such_an_object_is_refused_not_read_as_empty(
    admin_api: client.ApiClient, namespace: str, gadgets: str
) -> None:
    raw = RawApi(admin_api)
    create(raw, gadgets, namespace, "plain", '{"size": 1}')
    applier = Applier(admin_api)
    assert len(applier.list_in_namespace([(f"{gadgets}/v1", "Gadget")], namespace)) == 1
    create(raw, gadgets, namespace, "deep", DEEP)
    with pytest.raises((ClusterError, ApplyError), match="nested deeper"):
        applier.list_in_namespace([(f"{gadgets}/v1", "Gadget")], namespace)
    with pytest.raises(ClusterError, match="nested deeper"):
        applier.list_kind(f"{gadgets}/v1", "Gadget", namespace=namespace)


def test_a_watch_that_delivers_such_an_object_ends_with_a_cluster_error(
    admin_api: client.ApiClient, namespace: str, gadgets: str
) -> None:
    raw = RawApi(admin_api)
    create(raw, gadgets, namespace, "plain", '{"size": 1}')
    opened = threading.Event()
    seen: list[str] = []
    failure: list[BaseException] = []

    def watch() -> None:
        try:
            query = {"timeoutSeconds": "20"}
            path = f"/apis/{gadgets}/v1/namespaces/{namespace}/gadgets"
            for event in raw.watch(path, query, read_timeout=30, on_open=opened.set):
                seen.append(str(event.get("type")))
        except BaseException as error:
            failure.append(error)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    assert opened.wait(10)
    create(raw, gadgets, namespace, "deep", DEEP)
    thread.join(30)
    assert not thread.is_alive()
    assert len(failure) == 1 and isinstance(failure[0], ClusterError), failure
    assert "ended" in str(failure[0])
