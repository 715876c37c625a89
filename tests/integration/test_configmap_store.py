"""The one ConfigMap store on the real API server: concurrent writers never lose an update, a value larger than
one ConfigMap is split into parts and read back whole (never a mix of two writes), a write that fails part-way
leaves the old value, a ConfigMap edited into garbage is refused by name, and the namespace is created once."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kubernetes import client

from gitopsguard.cluster.configmaps import (
    MAX_PARTS,
    PART_BYTES,
    PARTS,
    ConfigMapStore,
    Content,
    Packed,
    Stored,
    ensure_namespace,
)
from gitopsguard.cluster.inventory import Entry, InventoryStore
from gitopsguard.cluster.rest import RawApi
from gitopsguard.errors import ClusterError
from gitopsguard.grants.store import GrantStore
from gitopsguard.model import ObjectKey
from gitopsguard.scan.state import ScanStateStore, Tracked
from tests.kube import binary_data_of, name_of

pytestmark = pytest.mark.integration
BIG = 3 * 1024 * 1024  # incompressible: four parts


class CrashError(Exception):
    """The process dies here: nothing after it runs, nothing is cleaned up."""


class Faulty(RawApi):
    """The real client, counting requests, and crashing on the ``crash_at``-th write matching ``crash_on``."""

    def __init__(self, api: client.ApiClient) -> None:
        super().__init__(api)
        self.crash_on: tuple[str, str] | None = None  # (method, path fragment)
        self.crash_at = 1
        self.sent: list[tuple[str, str, int]] = []
        self._lock = threading.Lock()

    def _crash(self, method: str, path: str) -> None:
        if self.crash_on and method == self.crash_on[0] and self.crash_on[1] in path:
            self.crash_at -= 1
            if self.crash_at == 0:
                raise CrashError(f"{method} {path}")

    def request(self, method: str, path: str, **options: Any) -> tuple[int, dict[str, Any]]:
        self._crash(method, path)
        status, body = super().request(method, path, **options)
        with self._lock:
            self.sent.append((method, path, status))
        return status, body


def _count(stored: Stored | None) -> Content:
    value = int(stored.content.data.get("n", "0")) if stored else 0
    return Content({"n": str(value + 1)})


def _increment(stores: list[ConfigMapStore], times: int) -> list[BaseException]:
    failures: list[BaseException] = []

    def work(store: ConfigMapStore) -> None:
        try:
            for _ in range(times):
                store.update("counter", _count)
        except BaseException as error:  # reported by the test, not lost in a thread
            failures.append(error)

    threads = [threading.Thread(target=work, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return failures


def test_eight_threads_incrementing_one_configmap_lose_no_update(admin_api: client.ApiClient, namespace: str) -> None:
    store = ConfigMapStore(RawApi(admin_api), namespace)
    assert _increment([store] * 8, 25) == []
    stored = ConfigMapStore(RawApi(admin_api), namespace).read("counter")
    assert stored is not None and stored.content.data["n"] == "200"


def test_two_controllers_incrementing_one_configmap_lose_no_update(admin_api: client.ApiClient, namespace: str) -> None:
    """Two processes (two stores, two connections, each guessing from what it last saw), four threads each."""
    one, other = ConfigMapStore(RawApi(admin_api), namespace), ConfigMapStore(RawApi(admin_api), namespace)
    assert _increment([one, other] * 4, 25) == []
    stored = ConfigMapStore(RawApi(admin_api), namespace).read("counter")
    assert stored is not None and stored.content.data["n"] == "200"


def _parts(admin_api: client.ApiClient, namespace: str) -> set[str]:
    listed = client.CoreV1Api(admin_api).list_namespaced_config_map(namespace).items
    return {name_of(c) for c in listed if name_of(c).startswith("big.")}


def test_a_value_larger_than_one_configmap_is_split_into_parts_and_read_back_whole(
    admin_api: client.ApiClient, namespace: str
) -> None:
    blob = os.urandom(BIG)
    store = ConfigMapStore(RawApi(admin_api), namespace)
    store.put("big", Content({"unit": "apps"}, {"blob.gz": Packed.of(blob)}, {"app": "x"}))
    stored = ConfigMapStore(RawApi(admin_api), namespace).read("big")  # another process: nothing cached
    assert stored is not None and stored.blob("blob.gz") == blob
    assert stored.content.data == {"unit": "apps"} and stored.content.labels == {"app": "x"}
    assert len(_parts(admin_api, namespace)) == 5  # 3 MiB and a little, in parts of 768 KiB
    listed, errors = ConfigMapStore(RawApi(admin_api), namespace).list(prefix="big")
    assert list(listed) == ["big"] and errors == [] and listed["big"].blob("blob.gz") == blob
    store.put("big", Content({"unit": "apps"}, {"blob.gz": Packed.of(b"small")}))
    assert _parts(admin_api, namespace) == set()  # the replaced parts are removed once the index moved on
    small = ConfigMapStore(RawApi(admin_api), namespace).read("big")
    assert small is not None and small.blob("blob.gz") == b"small"


def test_a_value_past_every_part_is_refused_naming_the_configmap_and_writes_nothing(
    admin_api: client.ApiClient, namespace: str
) -> None:
    raw = Faulty(admin_api)
    store = ConfigMapStore(raw, namespace)
    store.put("big", Content({"v": "old"}, {"blob.gz": Packed.of(b"old")}))
    before = len(raw.sent)
    huge = Packed.of(os.urandom(MAX_PARTS * PART_BYTES + 1))
    with pytest.raises(ClusterError, match=f"^ConfigMap/{namespace}/big: .* more than the {MAX_PARTS * PART_BYTES}"):
        store.put("big", Content({"v": "new"}, {"blob.gz": huge}))
    assert [method for method, _, _ in raw.sent[before:]] == []
    stored = ConfigMapStore(RawApi(admin_api), namespace).read("big")
    assert stored is not None and stored.blob("blob.gz") == b"old"


@pytest.mark.parametrize(
    ("crash_on", "crash_at"),
    [(("POST", "/configmaps"), 3), (("PUT", "/configmaps/big"), 1)],
    ids=["between-two-parts", "after-the-parts-before-the-index"],
)
def test_a_write_that_dies_part_way_leaves_the_old_value_readable(
    admin_api: client.ApiClient, namespace: str, crash_on: tuple[str, str], crash_at: int
) -> None:
    old, new = os.urandom(BIG), os.urandom(BIG)
    raw = Faulty(admin_api)
    store = ConfigMapStore(raw, namespace)
    store.put("big", Content({"v": "old"}, {"blob.gz": Packed.of(old)}))
    raw.crash_on, raw.crash_at = crash_on, crash_at
    with pytest.raises(CrashError):
        store.put("big", Content({"v": "new"}, {"blob.gz": Packed.of(new)}))
    stored = ConfigMapStore(RawApi(admin_api), namespace).read("big")
    assert stored is not None and stored.content.data == {"v": "old"} and stored.blob("blob.gz") == old
    raw.crash_on = None  # the next write (after a restart) goes through; what the crash left is never read
    ConfigMapStore(RawApi(admin_api), namespace).put("big", Content({"v": "new"}, {"blob.gz": Packed.of(new)}))
    again = ConfigMapStore(RawApi(admin_api), namespace).read("big")
    assert again is not None and again.blob("blob.gz") == new


def test_parts_a_dead_write_left_behind_are_removed_by_a_later_write_once_old_enough(
    admin_api: client.ApiClient, namespace: str
) -> None:
    raw = Faulty(admin_api)
    ConfigMapStore(raw, namespace).put("big", Content({}, {"blob.gz": Packed.of(os.urandom(BIG))}))
    raw.crash_on, raw.crash_at = ("POST", "/configmaps"), 3
    with pytest.raises(CrashError):
        ConfigMapStore(raw, namespace).put("big", Content({}, {"blob.gz": Packed.of(os.urandom(BIG))}))
    assert len(_parts(admin_api, namespace)) == 5 + 2
    young = ConfigMapStore(RawApi(admin_api), namespace)  # a write under way may own them: kept
    young.put("big", Content({"v": "1"}, {"blob.gz": Packed.of(os.urandom(BIG))}))
    assert len(_parts(admin_api, namespace)) == 5 + 2
    old = ConfigMapStore(RawApi(admin_api), namespace, sweep_after=timedelta(0))
    old.put("big", Content({"v": "2"}, {"blob.gz": Packed.of(os.urandom(BIG))}))
    stored = old.read("big")
    assert stored is not None and _parts(admin_api, namespace) == set(stored.parts)


def test_a_write_that_dies_before_removing_the_old_parts_leaves_the_new_value_readable(
    admin_api: client.ApiClient, namespace: str
) -> None:
    raw = Faulty(admin_api)
    store = ConfigMapStore(raw, namespace)
    store.put("big", Content({"v": "old"}, {"blob.gz": Packed.of(os.urandom(BIG))}))
    raw.crash_on = ("DELETE", "/configmaps/big.")
    new = os.urandom(BIG)
    with pytest.raises(CrashError):
        store.put("big", Content({"v": "new"}, {"blob.gz": Packed.of(new)}))
    stored = ConfigMapStore(RawApi(admin_api), namespace).read("big")
    assert stored is not None and stored.content.data == {"v": "new"} and stored.blob("blob.gz") == new


def test_a_reader_never_sees_a_mix_of_two_chunked_values(admin_api: client.ApiClient, namespace: str) -> None:
    values = [os.urandom(BIG // 2) for _ in range(2)]
    writer = ConfigMapStore(RawApi(admin_api), namespace)
    writer.put("big", Content({"i": "0"}, {"blob.gz": Packed.of(values[0])}))
    stop, seen, failures = threading.Event(), [], []

    def read() -> None:
        reader = ConfigMapStore(RawApi(admin_api), namespace)
        try:
            while not stop.is_set():
                stored = reader.read("big")
                assert stored is not None
                seen.append((stored.content.data["i"], stored.blob("blob.gz")))
        except BaseException as error:
            failures.append(error)

    thread = threading.Thread(target=read)
    thread.start()
    try:
        for i in range(1, 9):
            writer.put("big", Content({"i": str(i % 2)}, {"blob.gz": Packed.of(values[i % 2])}))
    finally:
        stop.set()
        thread.join()
    assert failures == [] and len(seen) >= 2
    assert all(blob == values[int(i)] for i, blob in seen)


# -- hand-edited garbage --------------------------------------------------------------------------------


def _hand_write(admin_api: client.ApiClient, namespace: str, name: str, body: dict[str, Any]) -> None:
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, **body.pop("metadata", {})}, **body}
    status, answer = RawApi(admin_api).request("POST", f"/api/v1/namespaces/{namespace}/configmaps", body=body)
    assert status == 201, answer


TOKEN = "0123456789abcdef"
LOST_PART = json.dumps({"token": TOKEN, "parts": [f"edited.{TOKEN}.0"], "sha256": "0", "sizes": {"blob.gz": 1}})
GARBAGE = {
    "not-compressed": {"binaryData": {"blob.gz": base64.b64encode(b"not gzip at all").decode()}},
    "a-bomb": {"binaryData": {"blob.gz": base64.b64encode(gzip.compress(b"\0" * (65 * 1024 * 1024))).decode()}},
    "parts-not-json": {"metadata": {"annotations": {"gitopsguard.io/parts": "{not json"}}},
    "a-part-missing": {"metadata": {"annotations": {"gitopsguard.io/parts": LOST_PART}}},
}


@pytest.mark.parametrize("garbage", GARBAGE.values(), ids=GARBAGE.keys())
def test_a_configmap_edited_into_garbage_is_refused_naming_it(
    admin_api: client.ApiClient, namespace: str, garbage: dict[str, Any]
) -> None:
    _hand_write(admin_api, namespace, "edited", garbage)
    with pytest.raises(ClusterError, match=f"^ConfigMap/{namespace}/edited: cannot be read .*delete it"):
        stored = ConfigMapStore(RawApi(admin_api), namespace).read("edited")
        assert stored is not None
        stored.blob("blob.gz")


def test_an_index_edited_to_name_another_values_part_never_gets_it_deleted(
    admin_api: client.ApiClient, namespace: str
) -> None:
    """Whoever may edit one store's ConfigMap must not make the controller delete another's (the grants state,
    say): the parts an index names are what its next write removes. The edit is a good one: the other value's
    first part, with its digest and size, so that only who the part belongs to gives it away."""
    blob = os.urandom(BIG)
    store = ConfigMapStore(RawApi(admin_api), namespace)
    store.put("other", Content({}, {"blob.gz": Packed.of(blob)}))
    other = store.read("other")
    assert other is not None
    (part, *_) = other.parts
    chunk = base64.b64decode(
        binary_data_of(client.CoreV1Api(admin_api).read_namespaced_config_map(part, namespace))["part"]
    )
    listing = {"token": part.split(".")[1], "parts": [part], "sha256": hashlib.sha256(chunk).hexdigest(),
               "sizes": {"blob.gz": len(chunk)}}  # fmt: skip
    _hand_write(admin_api, namespace, "edited", {"metadata": {"annotations": {PARTS: json.dumps(listing)}}})
    with pytest.raises(ClusterError, match=f"^ConfigMap/{namespace}/edited: cannot be read .*not .*parts"):
        store.read("edited")
    with pytest.raises(ClusterError, match=f"^ConfigMap/{namespace}/edited: cannot be read"):
        store.put("edited", Content({"v": "new"}))
    again = ConfigMapStore(RawApi(admin_api), namespace).read("other")
    assert again is not None and again.blob("blob.gz") == blob


def test_the_inventory_edited_into_garbage_fails_its_load_naming_it(
    admin_api: client.ApiClient, namespace: str
) -> None:
    """Fail closed: a pass must not run (and prune) from an inventory it cannot read."""
    garbage = {"binaryData": {"entries.json.gz": base64.b64encode(gzip.compress(b"[[1,2]]")).decode()}}
    _hand_write(admin_api, namespace, "gitopsguard-inventory-apps", garbage)
    with pytest.raises(ClusterError, match=f"^ConfigMap/{namespace}/gitopsguard-inventory-apps: cannot be read"):
        InventoryStore(admin_api, namespace=namespace).load("apps")


def test_the_grants_state_edited_into_garbage_fails_its_read_naming_it(
    admin_api: client.ApiClient, namespace: str
) -> None:
    _hand_write(admin_api, namespace, "gitopsguard-grants", {"binaryData": {"grants.json.gz": "AAAA"}})
    with pytest.raises(ClusterError, match=f"^ConfigMap/{namespace}/gitopsguard-grants: .*cannot be read"):
        GrantStore(RawApi(admin_api), namespace).read()


def test_a_scan_state_edited_into_garbage_is_skipped_and_named(admin_api: client.ApiClient, namespace: str) -> None:
    """Its workloads' grace periods start again (later deletion, never sooner); the others load."""
    store = ScanStateStore(RawApi(admin_api), namespace)
    store.save("shop", [("uid-1", Tracked("Pod/shop/a", datetime(2026, 12, 5, tzinfo=UTC), "d1"))])
    _hand_write(admin_api, namespace, "gitopsguard-live-scan-bad", {
        "metadata": {"labels": {"app.kubernetes.io/component": "live-scan-state"}},
        "data": {"namespace": "bad"}, "binaryData": {"tracked.json.gz": "AAAA"}})  # fmt: skip
    tracked, problems = ScanStateStore(RawApi(admin_api), namespace).load()
    assert list(tracked) == ["uid-1"]
    assert len(problems) == 1 and problems[0].startswith(f"ConfigMap/{namespace}/gitopsguard-live-scan-bad: ")


# -- upgrades -------------------------------------------------------------------------------------------


def test_an_inventory_written_by_the_previous_version_still_loads(admin_api: client.ApiClient, namespace: str) -> None:
    """The body exactly as the previous version's InventoryStore.save wrote it (PUT, then POST when absent)."""
    rows = [["v1", "", "ConfigMap", "shop", "a", "7", "d1"], ["apps/v1", "apps", "Deployment", "shop", "web", "", ""]]
    unmanaged = [["", "Pod", "shop", "stray", "2026-11-24T12:00:00+00:00"]]

    def packed(value: object) -> str:
        return base64.b64encode(gzip.compress(json.dumps(value, separators=(",", ":")).encode(), mtime=0)).decode()

    _hand_write(admin_api, namespace, "gitopsguard-inventory-apps", {
        "metadata": {"labels": {"app.kubernetes.io/component": "inventory"}},
        "data": {"unit": "apps", "lastApplied": "abc", "count": "2", "lastAttempted": "def", "lastError": "",
                 "lastChanges": "ConfigMap/shop/a created", "unmanagedCount": "1", "scansUnmanaged": "true",
                 "appliedAs": "path=apps", "reviewed": "bob approved"},
        "binaryData": {"entries.json.gz": packed(rows), "unmanaged.json.gz": packed(unmanaged)}})  # fmt: skip
    store = InventoryStore(admin_api, namespace=namespace)
    loaded = store.load("apps")
    assert loaded.entries == {ObjectKey("", "ConfigMap", "shop", "a"): Entry("v1", "7", "d1"),
                              ObjectKey("apps", "Deployment", "shop", "web"): Entry("apps/v1")}  # fmt: skip
    assert loaded.unmanaged == {ObjectKey("", "Pod", "shop", "stray"): datetime(2026, 11, 24, 12, tzinfo=UTC)}
    assert (loaded.last_applied, loaded.last_attempted, loaded.last_changes, loaded.scans_unmanaged) == (
        "abc", "def", "ConfigMap/shop/a created", True)  # fmt: skip
    assert (loaded.applied_as, loaded.reviewed) == ("path=apps", "bob approved")
    store.save("apps", loaded)
    assert InventoryStore(admin_api, namespace=namespace).load("apps") == loaded


# -- the controller namespace ---------------------------------------------------------------------------


@pytest.fixture
def absent(admin_api: client.ApiClient) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:10]}-home"
    yield name
    RawApi(admin_api).request("DELETE", f"/api/v1/namespaces/{name}")


def test_the_namespace_is_created_once_by_many_first_writers(admin_api: client.ApiClient, absent: str) -> None:
    raw = Faulty(admin_api)
    stores = [ConfigMapStore(raw, absent) for _ in range(8)]
    assert _increment(stores, 2) == []
    made = [status for method, path, status in raw.sent if (method, path) == ("POST", "/api/v1/namespaces")]
    assert made.count(201) == 1 and set(made) <= {201, 409}
    stored = ConfigMapStore(RawApi(admin_api), absent).read("counter")
    assert stored is not None and stored.content.data["n"] == "16"
    before = len(raw.sent)
    stores[0].update("counter", _count)  # the namespace is there: no more attempts to make it
    assert all(path != "/api/v1/namespaces" for _, path, _ in raw.sent[before:])


def test_ensure_namespace_says_whether_it_made_it(admin_api: client.ApiClient, absent: str) -> None:
    raw = RawApi(admin_api)
    assert ensure_namespace(raw, absent) is True
    assert ensure_namespace(raw, absent) is False
    assert raw.request("GET", f"/api/v1/namespaces/{absent}")[0] == 200
