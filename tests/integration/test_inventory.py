"""The inventory round-trips through the real API server and holds 20,000 objects in one ConfigMap."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest
from kubernetes import client

from gitopsguard.cluster.configmaps import ConfigMapStore, Content
from gitopsguard.cluster.inventory import CONTROLLER_NAMESPACE, Entry, Inventory, InventoryStore
from gitopsguard.cluster.rest import RawApi
from gitopsguard.model import ObjectKey
from tests.kube import binary_data_of

pytestmark = pytest.mark.integration


def test_twenty_thousand_entries_fit_and_round_trip(admin_api: client.ApiClient, namespace: str) -> None:
    entries = {
        ObjectKey("", "ConfigMap", f"team-{i % 50:02d}", f"config-{i}"):
            Entry("v1", str(100000 + i * 7), hashlib.sha256(str(i).encode()).hexdigest()[:16])
        for i in range(20000)
    }  # fmt: skip
    seen = {ObjectKey("apps", "Deployment", "shop", "stray"): datetime(2026, 11, 24, 12, 0, tzinfo=UTC)}
    store = InventoryStore(admin_api)
    store.save(namespace, Inventory(entries, "abc", "def", "", "ConfigMap/x created", seen, True, "path=apps"))
    loaded = store.load(namespace)
    assert loaded.entries == entries
    assert (loaded.last_applied, loaded.last_attempted, loaded.unmanaged, loaded.scans_unmanaged) == (
        "abc",
        "def",
        seen,
        True,
    )
    assert loaded.applied_as == "path=apps"
    stored = client.CoreV1Api(admin_api).read_namespaced_config_map(
        f"gitopsguard-inventory-{namespace}", "gitopsguard-system"
    )
    assert len(binary_data_of(stored)["entries.json.gz"]) < 600 * 1024


def test_the_first_save_creates_the_controller_namespace_and_a_missing_inventory_reads_empty(
    admin_api: client.ApiClient, namespace: str
) -> None:
    home = f"{namespace}-home"  # not there yet: the first save makes it
    store = InventoryStore(admin_api, namespace=home)
    try:
        assert store.load("apps") == Inventory()
        store.save("apps", Inventory({ObjectKey("", "ConfigMap", "shop", "a"): Entry("v1", "7", "d1")}, "abc"))
        assert store.load("apps").entries == {ObjectKey("", "ConfigMap", "shop", "a"): Entry("v1", "7", "d1")}
        store.save("apps", Inventory({}, "def"))  # later saves replace it
        assert store.load("apps") == Inventory({}, "def")
        assert list(store.units()) == ["apps"]
    finally:
        client.CoreV1Api(admin_api).delete_namespace(home)


def test_the_brake_and_the_last_error_round_trip_apart(admin_api: client.ApiClient, namespace: str) -> None:
    store = InventoryStore(admin_api)
    store.save(namespace, Inventory({}, "abc", "abc", "mass-prune brake: a.yaml:1: not valid YAML", brake=""))
    assert (store.load(namespace).last_error, store.load(namespace).brake) == (
        "mass-prune brake: a.yaml:1: not valid YAML",
        "",
    )
    store.save(namespace, Inventory({}, "abc", "abc", "", brake="would delete 3 of 4 owned objects"))
    assert (store.load(namespace).last_error, store.load(namespace).brake) == ("", "would delete 3 of 4 owned objects")


def test_an_inventory_saved_before_the_brake_had_a_key_reads_its_brake_from_the_last_error(
    admin_api: client.ApiClient, namespace: str
) -> None:
    """Inventories saved by earlier versions kept the brake in ``lastError``; they still read as held, not failed."""
    old = {"unit": namespace, "lastApplied": "abc", "lastAttempted": "abc", "count": "0",
           "lastError": "mass-prune brake: would delete 3 of 4 owned objects", "lastChanges": ""}  # fmt: skip
    ConfigMapStore(RawApi(admin_api), CONTROLLER_NAMESPACE).put(f"gitopsguard-inventory-{namespace}", Content(old))
    loaded = InventoryStore(admin_api).load(namespace)
    assert (loaded.last_error, loaded.brake) == ("", "would delete 3 of 4 owned objects")
    failed = {**old, "lastError": "apps/c.yaml:3: not valid YAML"}
    ConfigMapStore(RawApi(admin_api), CONTROLLER_NAMESPACE).put(f"gitopsguard-inventory-{namespace}", Content(failed))
    loaded = InventoryStore(admin_api).load(namespace)
    assert (loaded.last_error, loaded.brake) == ("apps/c.yaml:3: not valid YAML", "")
