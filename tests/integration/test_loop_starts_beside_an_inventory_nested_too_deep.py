"""An inventory edited into JSON nested deeper than the parser recurses (``[[[[...`` 100,000 deep: 100 KiB, a few
hundred bytes gzipped) is a damaged inventory like any other: its load fails with a ClusterError naming the
ConfigMap and saying what to do. It raised RecursionError, which no caller expects: since the loop reads the
inventory before its first pass (``Controller.run`` watches the kinds it names, ``Reconciler.owned_kinds``),
outside the pass that reports any error, the whole controller ended at start, and restarted into the same
end, instead of reporting the damage in every pass and serving the rest. Who breaks it: anyone who may edit a
ConfigMap of gitopsguard's namespace, or a bug that writes one wrong."""

from __future__ import annotations

import base64
import gzip
import threading
from pathlib import Path

import pytest
from kubernetes import client

from gitopsguard.cluster.apply import Applier
from gitopsguard.cluster.inventory import InventoryStore
from gitopsguard.cluster.rest import RawApi
from gitopsguard.controller import Controller
from gitopsguard.errors import ClusterError
from gitopsguard.reconcile import ReconcileResult, Unit
from gitopsguard.source import GitSource, SourceSpec
from tests.gitrepo import Upstream
from tests.waiting import CONFIGMAP, eventually

pytestmark = pytest.mark.integration

NESTED = b"[" * 100_000 + b"]" * 100_000


def damaged_inventory(admin_api: client.ApiClient, namespace: str, unit: str, *, where: str) -> None:
    """The unit's inventory, written by hand with JSON nested too deep in its entries blob or its data."""
    body: dict[str, object] = {"apiVersion": "v1", "kind": "ConfigMap",
                               "metadata": {"name": f"gitopsguard-inventory-{unit}"}}  # fmt: skip
    if where == "blob":
        body["binaryData"] = {"entries.json.gz": base64.b64encode(gzip.compress(NESTED)).decode()}
    else:
        body["data"] = {"unmanaged": NESTED.decode()}
    status, answer = RawApi(admin_api).request("POST", f"/api/v1/namespaces/{namespace}/configmaps", body=body)
    assert status == 201, answer


@pytest.mark.parametrize("where", ["blob", "data"])
def test_an_inventory_nested_too_deep_fails_its_load_naming_it(
    admin_api: client.ApiClient, namespace: str, where: str
) -> None:
    damaged_inventory(admin_api, namespace, "apps", where=where)
    with pytest.raises(ClusterError, match=f"^ConfigMap/{namespace}/gitopsguard-inventory-apps: cannot be read"):
        InventoryStore(admin_api, namespace=namespace).load("apps")


def test_a_loop_whose_inventory_is_nested_too_deep_reports_it_in_its_passes_and_runs_on(
    admin_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    upstream = Upstream(tmp_path / "git")
    upstream.write("apps/a.yaml", CONFIGMAP.format(name="a", value="1"))
    upstream.commit()
    damaged_inventory(admin_api, namespace, namespace, where="blob")
    results: list[ReconcileResult] = []
    controller = Controller(Unit(namespace, "apps", namespace), GitSource(SourceSpec(upstream.url), tmp_path / "gg"),
                            Applier(admin_api), InventoryStore(admin_api, namespace=namespace), RawApi(admin_api),
                            interval=60, on_result=results.append)  # fmt: skip
    stop = threading.Event()
    thread = threading.Thread(target=controller.run, args=(stop,), daemon=True)
    thread.start()
    try:
        eventually(lambda: any(r.error and "cannot be read" in r.error for r in results) or not thread.is_alive())
        assert thread.is_alive(), "the loop ended at start"
        assert all("RecursionError" not in (r.error or "") for r in results), [r.error for r in results]
    finally:
        stop.set()
        controller.wake()
        thread.join(15)
