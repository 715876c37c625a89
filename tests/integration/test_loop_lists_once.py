"""A restarted loop lists what its unit owns once: its watches start before its first pass, and every pass reads
from them, waiting for their first list rather than making one of its own. Before, the first pass (a hold of the
last applied commit) listed every owned kind, the watches listed it again, and the next pass listed it a third
time while they were still at it: at 5,000 ConfigMaps two of those lists, about 15 and 9 MiB parsed, were alive at
once at the loop's peak (bench/README.md, "Memory")."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from gitopsguard.cluster.apply import Applier, Scope
from gitopsguard.cluster.inventory import InventoryStore
from gitopsguard.cluster.rest import RawApi
from gitopsguard.controller import Controller
from gitopsguard.model import KubeObject, ObjectKey
from gitopsguard.reconcile import ReconcileResult, Unit, reconcile
from gitopsguard.render.stored import RenderStore
from gitopsguard.source import GitSource, SourceSpec
from tests.gitrepo import Upstream
from tests.waiting import CONFIGMAP, eventually, value_of

pytestmark = pytest.mark.integration


@pytest.fixture
def passes_listed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The kinds a pass listed itself (``Applier.list_owned``), one entry per kind and call."""
    listed: list[str] = []
    real = Applier.list_owned

    def list_owned(self: Applier, scopes: Iterable[Scope], unit: str) -> dict[ObjectKey, KubeObject]:
        scopes = list(scopes)
        listed.extend(sorted({kind for _, kind, _ in scopes}))
        return real(self, scopes, unit)

    monkeypatch.setattr(Applier, "list_owned", list_owned)
    return listed


@pytest.fixture
def watches_listed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The kinds the loop's watches listed (``Applier.list_pages``), one entry per list."""
    listed: list[str] = []
    real = Applier.list_pages

    def list_pages(self: Applier, api_version: str, kind: str, **options: Any) -> Any:
        listed.append(kind)
        return real(self, api_version, kind, **options)

    monkeypatch.setattr(Applier, "list_pages", list_pages)
    return listed


def applied_unit(admin_api: client.ApiClient, namespace: str, tmp_path: Path, names: Iterable[str]) -> Controller:
    """Three ConfigMaps applied as `gitopsguard reconcile` does, and a loop for them, not started."""
    upstream = Upstream(tmp_path / "git")
    for name in names:
        upstream.write(f"apps/{name}.yaml", CONFIGMAP.format(name=name, value="1"))
    upstream.commit()
    unit, applier, store = Unit(namespace, "apps", namespace), Applier(admin_api), InventoryStore(admin_api)
    source = GitSource(SourceSpec(upstream.url), tmp_path / "gg")
    assert reconcile(unit, source, applier, store, stored=RenderStore(source.workdir / "renders")).error is None
    return Controller(unit, GitSource(SourceSpec(upstream.url), tmp_path / "gg"), applier, store, RawApi(admin_api),
                      interval=60, on_result=RESULTS.append)  # fmt: skip


RESULTS: list[ReconcileResult] = []


@pytest.fixture(autouse=True)
def fresh_results() -> None:
    RESULTS.clear()


def running(controller: Controller) -> tuple[threading.Event, threading.Thread]:
    stop = threading.Event()
    thread = threading.Thread(target=controller.run, args=(stop,), daemon=True)
    thread.start()
    return stop, thread


def test_a_restarted_loop_lists_each_owned_kind_once_and_no_pass_lists_it_again(
    admin_api: client.ApiClient, namespace: str, tmp_path: Path, passes_listed: list[str], watches_listed: list[str]
) -> None:
    controller = applied_unit(admin_api, namespace, tmp_path, ["a", "b", "c"])
    passes_listed.clear()
    stop, thread = running(controller)
    try:
        eventually(lambda: controller.policies is not None, 60)  # the hold, then the head's pass (slow under load)
        assert all(r.error is None for r in RESULTS), [r.error for r in RESULTS]
        assert "ConfigMap" not in passes_listed, passes_listed
        assert watches_listed.count("ConfigMap") == 1, watches_listed
    finally:
        stop.set()
        controller.wake()
        thread.join(15)


def test_the_first_pass_repairs_drift_from_the_watch_while_the_head_is_still_judged(
    admin_api: client.ApiClient, namespace: str, tmp_path: Path, passes_listed: list[str], worker_waits: threading.Event
) -> None:
    controller = applied_unit(admin_api, namespace, tmp_path, ["a", "b"])
    core = client.CoreV1Api(admin_api)
    core.patch_namespaced_config_map("b", namespace, {"data": {"value": "edited while the loop was down"}})
    passes_listed.clear()
    stop, thread = running(controller)
    try:
        eventually(lambda: value_of(core, "b", namespace) == "1", 60)  # repaired by the hold: the worker still waits
        eventually(lambda: [c.key.name for r in RESULTS for c in r.changes if c.repaired_drift] == ["b"])
        assert not worker_waits.is_set()
        assert "ConfigMap" not in passes_listed, passes_listed
    finally:
        worker_waits.set()
        stop.set()
        controller.wake()
        thread.join(15)
