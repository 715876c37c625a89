"""The continuous loop keeps one render of a commit. A restarted loop holds the last applied commit from a render
of its own while its worker judges the head, most often that very commit: once the head is judged, the loop
keeps the head's render and lets its own copy go (at 5,000 objects the copy, with the prepared forms the hold
made of it, was several MB for as long as the loop ran: bench/README.md, "Memory")."""

from __future__ import annotations

import gc
import threading
import weakref
from pathlib import Path

import pytest
from kubernetes import client

from gitopsguard.cluster.apply import Applier
from gitopsguard.cluster.inventory import InventoryStore
from gitopsguard.cluster.rest import RawApi
from gitopsguard.controller import Controller
from gitopsguard.model import Manifest
from gitopsguard.reconcile import ReconcileResult, Unit, reconcile
from gitopsguard.render.stored import RenderStore
from gitopsguard.source import GitSource, SourceSpec
from tests.gitrepo import Upstream
from tests.waiting import CONFIGMAP, eventually, value_of

pytestmark = pytest.mark.integration


def collected(ref: weakref.ref[Manifest]) -> bool:
    gc.collect()
    return ref() is None


def test_a_restarted_loop_lets_its_own_render_go_once_the_head_of_the_same_commit_is_judged(
    admin_api: client.ApiClient, namespace: str, tmp_path: Path, worker_waits: threading.Event
) -> None:
    upstream = Upstream(tmp_path / "git")
    upstream.write("apps/a.yaml", CONFIGMAP.format(name="a", value="1"))
    commit = upstream.commit()
    unit, applier, store = Unit(namespace, "apps", namespace), Applier(admin_api), InventoryStore(admin_api)
    source = GitSource(SourceSpec(upstream.url), tmp_path / "gg")
    # applied as `gitopsguard reconcile` does, its render kept on disk: the restarted loop reads it from there
    stored = RenderStore(source.workdir / "renders", memo=False)
    assert reconcile(unit, source, applier, store, stored=stored).error is None
    results: list[ReconcileResult] = []
    controller = Controller(unit, GitSource(SourceSpec(upstream.url), tmp_path / "gg"), applier, store,
                            RawApi(admin_api), interval=60, on_result=results.append)  # fmt: skip
    stop = threading.Event()
    thread = threading.Thread(target=controller.run, args=(stop,), daemon=True)
    thread.start()
    try:
        eventually(lambda: bool(results))  # the first pass held the last applied commit, from its own render
        held = weakref.ref(controller._renders[commit][0])
        worker_waits.set()
        eventually(lambda: collected(held))  # the head's render of the same commit is kept instead
        assert [m.key.name for m in controller._renders[commit]] == ["a"]
        core = client.CoreV1Api(admin_api)
        core.patch_namespaced_config_map("a", namespace, {"data": {"value": "edited"}})
        eventually(lambda: value_of(core, "a", namespace) == "1")  # drift is repaired from the kept render
    finally:
        stop.set()
        controller.wake()
        thread.join(15)
