"""The policy gate's Namespaces come from one watch in the Units loop: no list per pass, and a Namespace that
appears or goes is still seen (``cluster/namespaces.py``)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

import pytest
from kubernetes import client

from gitopsguard.cluster.apply import Applier
from gitopsguard.cluster.namespaces import NamespaceView
from gitopsguard.cluster.rest import RawApi
from gitopsguard.model import KubeObject, ObjectKey
from tests.integration.test_tenant_impersonation import make_namespace
from tests.waiting import eventually

pytestmark = pytest.mark.integration


class CountingApplier(Applier):
    lists = 0

    def _list(
        self, kinds: Sequence[tuple[str, str]], namespaces: Sequence[str | None], query: dict[str, str] | None,
        what: str,
    ) -> dict[ObjectKey, KubeObject]:  # fmt: skip
        self.lists += 1
        return super()._list(kinds, namespaces, query, what)


@pytest.fixture
def stop() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()


def test_namespaces_are_read_from_the_watch_and_follow_creation_and_deletion(
    admin_api: client.ApiClient, stop: threading.Event
) -> None:
    applier = CountingApplier(admin_api)
    view = NamespaceView(applier, RawApi(admin_api))
    applier.namespaces_from = view.objects
    assert "default" in applier.namespaces() and applier.lists == 1, "listed while the watch is not in sync"
    view.start(stop)
    eventually(lambda: view.objects() is not None, 30, every=0.1)
    applier.lists = 0
    core = client.CoreV1Api(admin_api)
    name = make_namespace(admin_api)
    eventually(lambda: name in applier.namespaces(), 30, every=0.1)
    core.delete_namespace(name)
    eventually(lambda: name not in applier.namespaces(), 60, every=0.2)
    assert applier.lists == 0, "every read came from the watch"


def test_a_view_whose_watch_never_listed_serves_nothing(admin_api: client.ApiClient) -> None:
    view = NamespaceView(Applier(admin_api), RawApi(admin_api))
    assert view.objects() is None, "never in sync yet"
