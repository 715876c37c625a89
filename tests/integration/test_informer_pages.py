"""Lists read in pages on the REAL API server (``Informer`` relists, ``Applier.list_owned``): more objects than a
page are read page by page and completely, and a continue token the server no longer serves (410 Expired, once
etcd compacted the list's revision: produced by the fault proxy in front of the real server, as etcd here
compacts every 5 minutes at most) lists again from the first page, losing and repeating nothing."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from gitopsguard.cluster import apply
from gitopsguard.cluster.apply import Applier
from gitopsguard.cluster.informer import Informer
from gitopsguard.cluster.rest import RawApi
from gitopsguard.model import UNIT_LABEL, KubeObject
from tests.faultproxy import Fault, FaultProxy, fault_proxy
from tests.waiting import eventually

pytestmark = pytest.mark.integration
CONFIGMAPS = ("v1", "ConfigMap")
COUNT = 25  # three pages of 10


@pytest.fixture
def proxy(admin_api: client.ApiClient, tmp_path: Path) -> Iterator[FaultProxy]:
    with fault_proxy(admin_api, tmp_path / "proxy") as running:
        yield running


@pytest.fixture
def stop() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()


def labelled(admin_api: client.ApiClient, namespace: str, label: str) -> set[str]:
    core = client.CoreV1Api(admin_api)
    for number in range(COUNT):
        meta = client.V1ObjectMeta(name=f"cm-{number:02d}", labels={label: "pages"})
        core.create_namespaced_config_map(namespace, client.V1ConfigMap(metadata=meta, data={"v": "1"}))
    return {f"cm-{number:02d}" for number in range(COUNT)}


def lists(proxy: FaultProxy, namespace: str) -> list[str]:
    """The list requests that reached the server (watches left out), in order."""
    prefix = f"GET /api/v1/namespaces/{namespace}/configmaps?"
    return [p for p in proxy.forwarded if p.startswith(prefix) and "watch=true" not in p]


class Names:
    def __init__(self) -> None:
        self.added: list[str] = []
        self.synced: list[bool] = []

    def on_event(self, change: str, body: KubeObject) -> None:
        if change == "ADDED":
            self.added.append(str(body["metadata"]["name"]))


def test_a_relist_of_more_objects_than_a_page_is_read_page_by_page_and_completely(
    admin_api: client.ApiClient, proxy: FaultProxy, namespace: str, stop: threading.Event
) -> None:
    label = f"pages-{uuid.uuid4().hex[:6]}"
    names = labelled(admin_api, namespace, label)
    heard = Names()
    informer = Informer(Applier(proxy.api()), RawApi(proxy.api()), CONFIGMAPS, selector=label, namespace=namespace,
                        on_event=heard.on_event, on_sync=heard.synced.append, page=10)  # fmt: skip
    informer.start(stop)
    eventually(lambda: heard.synced == [True])
    asked = lists(proxy, namespace)
    assert len(asked) == 3 and all("limit=10" in p for p in asked), asked
    assert "continue=" not in asked[0] and all("continue=" in p for p in asked[1:])
    assert sorted(heard.added) == sorted(names) and {key.name for key in informer.objects()} == names


def test_a_continue_token_that_expired_lists_again_from_the_first_page_and_loses_nothing(
    admin_api: client.ApiClient, proxy: FaultProxy, namespace: str, stop: threading.Event
) -> None:
    """Attack on the cache's completeness: the rest of a list cannot be read (410 Expired). Taking the pages
    read so far as the whole would file 10 of 25 objects as all there is; reading on with another token would
    mix two revisions. The list starts again, and each object is told once."""
    label = f"pages-{uuid.uuid4().hex[:6]}"
    names = labelled(admin_api, namespace, label)
    expired = proxy.add(Fault("expired", lambda method, p: method == "GET" and "continue=" in p, times=1))
    heard = Names()
    informer = Informer(Applier(proxy.api()), RawApi(proxy.api()), CONFIGMAPS, selector=label, namespace=namespace,
                        on_event=heard.on_event, on_sync=heard.synced.append, page=10)  # fmt: skip
    informer.start(stop)
    eventually(lambda: heard.synced == [True])
    assert len(expired.hits) == 1, "the second page was answered 410 Expired"
    asked = lists(proxy, namespace)
    assert ["continue=" in p for p in asked] == [False, False, True, True], "from the first page again"
    assert sorted(heard.added) == sorted(names), "every object told once, none twice"
    assert {key.name for key in informer.objects()} == names


def test_a_units_owned_objects_are_listed_in_pages_and_completely_through_an_expired_token(
    admin_api: client.ApiClient, proxy: FaultProxy, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pass's own list (``list_owned``, before the live cache is in sync): a list cut short would read as
    objects gone, to be created again or (in a prune) decided on."""
    monkeypatch.setattr(apply, "OWNED_PAGE", 10)
    names = labelled(admin_api, namespace, UNIT_LABEL)  # labelled with the unit "pages"
    expired = proxy.add(Fault("expired", lambda method, p: method == "GET" and "continue=" in p, times=1))
    owned = Applier(proxy.api()).list_owned([("v1", "ConfigMap", namespace)], "pages")
    assert {key.name for key in owned} == names and len(expired.hits) == 1
    asked = [p for p in proxy.forwarded if p.startswith("GET /api/v1/configmaps?")]
    assert ["continue=" in p for p in asked] == [False, False, True, True] and all("limit=10" in p for p in asked)
