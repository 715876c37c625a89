"""The one informer (``cluster/informer.py``) on the real API server: expiry, silence, bookmarks, bursts."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from kubernetes import client

from gitopsguard.cluster.apply import PAGE, Applier
from gitopsguard.cluster.informer import Informer
from gitopsguard.cluster.rest import RawApi
from gitopsguard.model import KubeObject, ObjectKey
from tests.kube import data_of, meta, name_of
from tests.stallproxy import StallProxy
from tests.waiting import eventually

pytestmark = pytest.mark.integration
CONFIGMAPS = ("v1", "ConfigMap")
LABEL = "informer-test"


@pytest.fixture
def stop() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()


class Replay:
    """What a caller rebuilds from the events alone, starting from the objects it was seeded with."""

    def __init__(self, seeded: dict[ObjectKey, KubeObject]) -> None:
        self.objects = {key: str(body["data"]["v"]) for key, body in seeded.items()}
        self.events: list[tuple[str, str]] = []
        self.synced: list[bool] = []
        self._lock = threading.Lock()

    def on_event(self, change: str, body: KubeObject) -> None:
        key = ObjectKey.of(body)
        with self._lock:
            self.events.append((change, key.name))
            if change == "DELETED":
                self.objects.pop(key, None)
            else:
                self.objects[key] = str(body["data"]["v"])

    def snapshot(self) -> dict[str, str]:
        with self._lock:
            return {key.name: value for key, value in self.objects.items()}


def configmap(name: str, tag: str, value: str = "1") -> client.V1ConfigMap:
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, labels={LABEL: tag}), data={"v": value})


def on_server(core: client.CoreV1Api, namespace: str, tag: str) -> dict[str, str]:
    listed = core.list_namespaced_config_map(namespace, label_selector=f"{LABEL}={tag}")
    return {name_of(item): data_of(item)["v"] for item in listed.items}


def seeded(applier: Applier, namespace: str, tag: str) -> dict[ObjectKey, KubeObject]:
    listed, _ = applier.list_kind(*CONFIGMAPS, namespace=namespace, query={"labelSelector": f"{LABEL}={tag}"})
    return listed


def test_a_watch_receiving_410_gone_relists_and_loses_no_event(
    admin_api: client.ApiClient, namespace: str, stop: threading.Event
) -> None:
    """An informer that was away so long that the server no longer keeps its resourceVersion: the server
    answers 410 Gone (an ERROR event "too old resource version"), and every change made meanwhile reaches
    the caller as an event of the relist's comparison."""
    core, tag, applier = client.CoreV1Api(admin_api), uuid.uuid4().hex[:8], Applier(admin_api)
    for name in ("kept", "edited", "deleted"):
        core.create_namespaced_config_map(namespace, configmap(name, tag))
    before = seeded(applier, namespace, tag)
    core.patch_namespaced_config_map("edited", namespace, {"data": {"v": "2"}})
    core.delete_namespaced_config_map("deleted", namespace)
    core.create_namespaced_config_map(namespace, configmap("created", tag))

    replay = Replay(before)
    informer = Informer(applier, RawApi(admin_api), CONFIGMAPS, selector=f"{LABEL}={tag}", on_event=replay.on_event)
    informer.seed(before, "1")  # far older than the server's window: what an informer away for long holds
    informer.start(stop)
    eventually(lambda: replay.snapshot() == on_server(core, namespace, tag))
    assert sorted(replay.events) == [("ADDED", "created"), ("DELETED", "deleted"), ("MODIFIED", "edited")]
    assert informer.relists == 1

    core.create_namespaced_config_map(namespace, configmap("after", tag))  # and it watches on from the relist
    eventually(lambda: replay.snapshot() == on_server(core, namespace, tag))


class BurstDuringList(Applier):
    """Changes the watched ConfigMaps right after the server answered the list, before the watch starts."""

    def __init__(self, api: client.ApiClient, namespace: str, tag: str) -> None:
        super().__init__(api)
        self._core, self._namespace, self._tag, self.bursts = client.CoreV1Api(api), namespace, tag, 0

    def list_pages(
        self, api_version: str, kind: str, *, namespace: str | None = None, query: dict[str, str] | None = None,
        what: str = "", limit: int = PAGE,
    ) -> Iterator[tuple[dict[ObjectKey, KubeObject], str]]:  # fmt: skip
        yield from super().list_pages(api_version, kind, namespace=namespace, query=query, what=what, limit=limit)
        if self.bursts == 0:  # the last page is in
            self.bursts += 1
            for number in range(20):
                self._core.create_namespaced_config_map(self._namespace, configmap(f"burst-{number}", self._tag))
            for number in range(0, 20, 2):
                self._core.patch_namespaced_config_map(f"burst-{number}", self._namespace, {"data": {"v": "2"}})
            for number in range(0, 20, 5):
                self._core.delete_namespaced_config_map(f"burst-{number}", self._namespace)


def test_a_burst_of_changes_during_a_relist_is_not_lost(
    admin_api: client.ApiClient, namespace: str, stop: threading.Event
) -> None:
    core, tag = client.CoreV1Api(admin_api), uuid.uuid4().hex[:8]
    core.create_namespaced_config_map(namespace, configmap("old", tag))
    applier = BurstDuringList(admin_api, namespace, tag)
    replay = Replay({})
    informer = Informer(applier, RawApi(admin_api), CONFIGMAPS, selector=f"{LABEL}={tag}", on_event=replay.on_event)
    informer.seed({}, "1")  # expired: the first watch is answered 410, and the relist meets the burst
    informer.start(stop)
    eventually(lambda: replay.snapshot() == on_server(core, namespace, tag))
    assert applier.bursts == 1 and len(on_server(core, namespace, tag)) == 1 + 20 - 4
    assert {name: value for name, value in on_server(core, namespace, tag).items() if value == "2"}, "edits seen"


def test_a_silent_watch_is_detected_and_resumed_within_its_timeout(
    admin_api: client.ApiClient, namespace: str, stop: threading.Event
) -> None:
    """The proxy stops passing the server's bytes without closing: without a read timeout the watch would
    wait forever. It is given up after the server's timeout plus the slack and resumed from its version."""
    core, tag, applier = client.CoreV1Api(admin_api), uuid.uuid4().hex[:8], Applier(admin_api)
    proxy = StallProxy(str(admin_api.configuration.host))
    try:
        replay = Replay({})
        informer = Informer(
            applier, RawApi(proxy.api(admin_api)), CONFIGMAPS, selector=f"{LABEL}={tag}", on_event=replay.on_event,
            on_sync=replay.synced.append, timeout=4, read_slack=2.0,
        )  # fmt: skip
        informer.start(stop)
        eventually(lambda: replay.synced == [True])
        core.create_namespaced_config_map(namespace, configmap("before", tag))
        eventually(lambda: replay.snapshot() == {"before": "1"})
        proxy.stall()
        stalled = time.monotonic()
        core.create_namespaced_config_map(namespace, configmap("during", tag))
        eventually(lambda: "during" in replay.snapshot(), timeout=15)
        waited = time.monotonic() - stalled
        assert False in replay.synced, "the silent watch was noticed as a failure"
        assert replay.synced[-1] is True, "and current again once the resumed watch was accepted"
        assert informer.relists == 1, "resumed from its resourceVersion, not listed again"
        assert waited < 4 + 2.0 + 3, f"resumed {waited:.1f} s after the stall"
    finally:
        proxy.close()


def test_bookmarks_advance_the_resource_version_while_nothing_matches(
    admin_api: client.ApiClient, namespace: str, stop: threading.Event
) -> None:
    core, tag = client.CoreV1Api(admin_api), uuid.uuid4().hex[:8]
    replay = Replay({})
    informer = Informer(Applier(admin_api), RawApi(admin_api), CONFIGMAPS, selector=f"{LABEL}={tag}",
                        on_event=replay.on_event, timeout=4)  # fmt: skip
    informer.start(stop)
    eventually(lambda: informer.resource_version != "")
    listed = int(informer.resource_version)
    core.create_namespaced_config_map(namespace, configmap("unmatched", "someone-else"))
    eventually(lambda: int(informer.resource_version) > listed, timeout=15)
    assert replay.events == [] and informer.relists == 1


def test_a_watch_refused_by_rbac_is_retried_after_a_pause_not_taken_for_an_expiry(
    admin_api: client.ApiClient, stop: threading.Event
) -> None:
    """alice may not watch ConfigMaps across the cluster: the refusal (HTTP 403) is a failure to wait out, not
    a 410 that would send the informer listing again and again, and the informer's thread survives it."""
    replay = Replay({})
    applier = Applier(admin_api)
    informer = Informer(
        applier, RawApi(admin_api, impersonate="alice"), CONFIGMAPS, on_event=replay.on_event,
        on_sync=replay.synced.append,
    )  # fmt: skip
    informer.seed({}, applier.list_kind(*CONFIGMAPS, query={"limit": "1"})[1])
    thread = informer.start(stop)
    eventually(lambda: replay.synced.count(False) >= 3)
    assert informer.relists == 0, "a refusal is not an expiry"
    assert thread.is_alive()


def test_an_object_deleted_while_away_comes_with_its_uid_when_bodies_are_not_kept(
    admin_api: client.ApiClient, namespace: str, stop: threading.Event
) -> None:
    """The live scan keeps no bodies in the informer (a cluster holds many Pods) and forgets what it judged by
    uid: a relist's DELETED must carry the uid, namespace and kind of what went."""
    core, tag, applier = client.CoreV1Api(admin_api), uuid.uuid4().hex[:8], Applier(admin_api)
    uid = meta(core.create_namespaced_config_map(namespace, configmap("gone", tag))).uid
    before = seeded(applier, namespace, tag)
    core.delete_namespaced_config_map("gone", namespace)
    deleted: list[KubeObject] = []
    informer = Informer(
        applier, RawApi(admin_api), CONFIGMAPS, selector=f"{LABEL}={tag}", keep_objects=False,
        on_event=lambda change, body: deleted.append(body) if change == "DELETED" else None,
    )  # fmt: skip
    informer.seed(before, "1")
    informer.start(stop)
    eventually(lambda: len(deleted) == 1)
    assert deleted[0]["apiVersion"] == "v1" and deleted[0]["kind"] == "ConfigMap"
    assert {k: deleted[0]["metadata"][k] for k in ("uid", "namespace", "name")} == {
        "uid": uid,
        "namespace": namespace,
        "name": "gone",
    }
    assert informer.objects() == {}, "no bodies kept"


class CallbackBugError(Exception):
    """Not a GitOpsGuardError: a bug in what the informer feeds, which nothing may survive quietly."""


def test_an_informer_whose_thread_dies_ends_the_process_through_the_lifeline(
    admin_api: client.ApiClient, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gitopsguard import lifeline

    exits: list[int] = []
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)  # restored after the test
    lifeline.install(exit_process=exits.append)
    core, tag = client.CoreV1Api(admin_api), uuid.uuid4().hex[:8]
    core.create_namespaced_config_map(namespace, configmap("a", tag))

    def broken(change: str, body: KubeObject) -> None:
        raise CallbackBugError("a bug")

    informer = Informer(Applier(admin_api), RawApi(admin_api), CONFIGMAPS, selector=f"{LABEL}={tag}", on_event=broken)
    stop = threading.Event()
    try:
        informer.start(stop).join(15)
        assert exits == [lifeline.EXIT_CODE] and lifeline.DEAD.is_set()
    finally:
        stop.set()
        lifeline.DEAD.clear()
