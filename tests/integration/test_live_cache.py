"""The loop's watch-fed cache of what a unit owns, on the real API server."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from kubernetes import client

from gitopsguard.cluster.apply import Applier, Scope
from gitopsguard.cluster.inventory import InventoryStore
from gitopsguard.cluster.livecache import LiveCache
from gitopsguard.cluster.rest import RawApi
from gitopsguard.model import UNIT_LABEL, KubeObject, ObjectKey
from gitopsguard.reconcile import Unit, reconcile
from gitopsguard.source import GitSource, SourceSpec
from tests.gitrepo import Upstream
from tests.waiting import eventually

pytestmark = pytest.mark.integration
CONFIGMAPS = ("v1", "ConfigMap")


@pytest.fixture
def stop() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()


def configmap(name: str, unit: str, value: str = "1") -> client.V1ConfigMap:
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, labels={UNIT_LABEL: unit}), data={"v": value})


def test_the_cache_follows_creates_edits_label_removal_and_deletes(
    admin_api: client.ApiClient, namespace: str, stop: threading.Event
) -> None:
    core, unit = client.CoreV1Api(admin_api), f"u{uuid.uuid4().hex[:8]}"
    core.create_namespaced_config_map(namespace, configmap("before", unit))
    changes: list[int] = []
    cache = LiveCache(Applier(admin_api), RawApi(admin_api), unit, on_change=lambda: changes.append(1))
    assert cache.objects(CONFIGMAPS) is None, "not served before it is listed"
    cache.track(CONFIGMAPS, stop)
    cache.track(CONFIGMAPS, stop)  # once per kind
    eventually(lambda: cache.objects(CONFIGMAPS) is not None)
    key = ObjectKey("", "ConfigMap", namespace, "before")
    assert set(cache.objects(CONFIGMAPS) or {}) == {key}

    core.create_namespaced_config_map(namespace, configmap("after", unit))
    core.patch_namespaced_config_map("before", namespace, {"data": {"v": "2"}})
    eventually(lambda: len(cache.objects(CONFIGMAPS) or {}) == 2)
    eventually(lambda: (cache.objects(CONFIGMAPS) or {})[key]["data"] == {"v": "2"})

    core.patch_namespaced_config_map("after", namespace, {"metadata": {"labels": {UNIT_LABEL: None}}})
    core.delete_namespaced_config_map("before", namespace)
    eventually(lambda: cache.objects(CONFIGMAPS) == {})
    assert changes, "every change wakes the loop"


class CountingApplier(Applier):
    def __init__(self, api: client.ApiClient) -> None:
        super().__init__(api)
        self.listed: list[Scope] = []

    def list_owned(self, scopes: Iterable[Scope], unit: str) -> dict[ObjectKey, KubeObject]:
        self.listed += list(scopes)
        return super().list_owned(scopes, unit)


def test_passes_fed_by_the_cache_list_nothing_and_still_repair_drift(
    admin_api: client.ApiClient, namespace: str, tmp_path: Path, stop: threading.Event
) -> None:
    upstream = Upstream(tmp_path / "git")
    upstream.write("apps/a.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {v: '1'}\n")
    upstream.commit()
    applier, store = CountingApplier(admin_api), InventoryStore(admin_api)
    unit, source = Unit(namespace, "apps", namespace), GitSource(SourceSpec(upstream.url), tmp_path / "gg")
    cache = LiveCache(applier, RawApi(admin_api), unit.name, on_change=lambda: None)
    assert reconcile(unit, source, applier, store, live=cache).error is None
    cache.track(CONFIGMAPS, stop)
    eventually(lambda: cache.objects(CONFIGMAPS) is not None)
    applier.listed.clear()

    core = client.CoreV1Api(admin_api)
    core.patch_namespaced_config_map("a", namespace, {"data": {"v": "edited"}})
    eventually(
        lambda: (cache.objects(CONFIGMAPS) or {})[ObjectKey("", "ConfigMap", namespace, "a")]["data"]["v"] == "edited"
    )
    result = reconcile(unit, source, applier, store, live=cache)
    assert [c.action.value for c in result.changes] == ["configured"]
    assert core.read_namespaced_config_map("a", namespace).data == {"v": "1"}
    assert applier.listed == [], "the pass read the cache, not the API server"
