"""The continuous loop against hostile heads and long outages: it keeps running, keeps repairing the last
applied commit, and does no work at rest."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kubernetes import client

from gitopsguard.cluster import retries
from gitopsguard.cluster.apply import Applier
from gitopsguard.cluster.inventory import InventoryStore
from gitopsguard.cluster.rest import RawApi
from gitopsguard.controller import Controller
from gitopsguard.reconcile import ReconcileResult, Unit
from gitopsguard.source import GitSource, SourceSpec
from tests.gitrepo import Upstream
from tests.integration.conftest import LiveCluster, bind_user
from tests.waiting import CONFIGMAP, eventually, value_of

pytestmark = pytest.mark.integration


class Running:
    """A controller on its own thread over a local repository, its results kept in order."""

    def __init__(self, controller: Controller, upstream: Upstream) -> None:
        self.controller, self.upstream, self.stop = controller, upstream, threading.Event()
        self.thread = threading.Thread(target=controller.run, args=(self.stop, upstream.bare), daemon=True)
        self.thread.start()

    def halt(self) -> None:
        self.stop.set()
        self.controller.wake()
        self.thread.join(15)
        assert not self.thread.is_alive(), "the loop stops when asked"


Start = Callable[[Upstream, list[ReconcileResult]], Running]


@pytest.fixture
def start(admin_api: client.ApiClient, namespace: str, tmp_path: Path) -> Iterator[Start]:
    started: list[Running] = []

    def run(upstream: Upstream, results: list[ReconcileResult]) -> Running:
        controller = Controller(
            Unit(namespace, "apps", namespace), GitSource(SourceSpec(upstream.url), tmp_path / "gg"),
            Applier(admin_api), InventoryStore(admin_api), RawApi(admin_api), interval=60, on_result=results.append,
        )  # fmt: skip
        started.append(Running(controller, upstream))
        return started[-1]

    yield run
    for running in started:
        running.halt()


def test_a_loop_that_fails_1100_passes_in_a_row_keeps_running(
    admin_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    """Before: the 1,025th failure in a row raised OverflowError (2.0 ** 1024) and ended the loop."""
    configuration = client.Configuration()
    configuration.host = "http://127.0.0.1:9"  # nobody listens: every pass fails at once reading the inventory
    # (asked once: the retries every request gets would make each of the 1,100 passes last seconds)
    unreachable = client.ApiClient(configuration)
    upstream = Upstream(tmp_path / "git")
    stop = threading.Event()
    results: list[ReconcileResult] = []

    def on_result(result: ReconcileResult) -> None:
        results.append(result)
        if len(results) >= 1100:
            stop.set()
        controller.wake()  # as fast as the live cache or the repository watch could wake it

    controller = Controller(
        Unit(namespace, "apps", namespace), GitSource(SourceSpec(upstream.url), tmp_path / "gg"),
        Applier(admin_api), InventoryStore(RawApi(unreachable, retry=retries.ONCE)), RawApi(admin_api),
        interval=30.0, on_result=on_result,
    )  # fmt: skip
    controller.run(stop)
    assert len(results) >= 1100 and all(r.error for r in results)


def test_a_loop_at_rest_over_a_local_repository_runs_no_passes(
    start: Start, admin_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    """Before: the loop's own fetch read the repository, the read woke the loop, and it never rested."""
    upstream = Upstream(tmp_path / "git")
    upstream.write("apps/a.yaml", CONFIGMAP.format(name="a", value="1"))
    upstream.commit()
    results: list[ReconcileResult] = []
    start(upstream, results)
    eventually(lambda: value_of(client.CoreV1Api(admin_api), "a", namespace) == "1")
    time.sleep(2.0)  # the passes our own writes cause end after one quiet pass
    before = len(results)
    time.sleep(5.0)
    assert len(results) - before <= 1, f"{len(results) - before} passes in 5 s at rest (interval 60 s)"


def tenant_edits(dev_cluster: LiveCluster, admin_api: client.ApiClient, namespace: str, name: str) -> None:
    """alice, who may edit her namespace and nothing more, changes an object the unit owns."""
    bind_user(admin_api, namespace, "alice-edits", "ClusterRole", "edit")
    alice = client.CoreV1Api(dev_cluster.api("dev-alice"))
    alice.patch_namespaced_config_map(name, namespace, {"data": {"value": "tenant"}})


def repaired_within(core: client.CoreV1Api, namespace: str, seconds: float) -> float:
    started = time.monotonic()
    eventually(lambda: value_of(core, "a", namespace) == "1", timeout=seconds)
    return time.monotonic() - started


HUGE_INT = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big\ndata:\n  value: x\nspec:\n  n: " + "9" * 5000


def test_drift_is_repaired_while_the_head_fails_to_render_with_an_unexpected_error(
    start: Start, admin_api: client.ApiClient, namespace: str, tmp_path: Path,
    dev_cluster: LiveCluster,
) -> None:  # fmt: skip
    """Before: the 5,000-digit integer escaped render as ValueError, the pass ended as an "internal error",
    and the loop stopped holding the last applied commit: the tenant's edit stayed."""
    upstream = Upstream(tmp_path / "git")
    upstream.write("apps/a.yaml", CONFIGMAP.format(name="a", value="1"))
    upstream.commit()
    results: list[ReconcileResult] = []
    start(upstream, results)
    core = client.CoreV1Api(admin_api)
    eventually(lambda: value_of(core, "a", namespace) == "1")
    upstream.write("apps/big.yaml", HUGE_INT)
    bad = upstream.commit()
    eventually(lambda: any(r.error for r in results))  # the head is refused (before: an "internal error")
    tenant_edits(dev_cluster, admin_api, namespace, "a")
    repaired_within(core, namespace, 10.0)
    refused = next(r for r in results if r.error)
    assert refused.revision == bad
    assert refused.error is not None and "internal error" not in refused.error
    assert "apps/big.yaml:" in refused.error and "digits" in refused.error  # render names the file and line
    assert InventoryStore(admin_api).load(namespace).last_error == refused.error


REQUIRED_LABELS = """\
apiVersion: gitopsguard.io/v1alpha1
kind: Policy
metadata:
  name: team-label
spec:
  builtin: {name: required-labels, params: {labels: [team]}}
  enforcement: enforce
"""


def test_a_head_the_gate_cannot_judge_is_refused_and_the_last_applied_commit_is_still_repaired(
    admin_api: client.ApiClient, namespace: str, tmp_path: Path, dev_cluster: LiveCluster
) -> None:
    """Before: ``metadata.labels: oops`` under a required-labels policy raised AttributeError out of the pass."""
    from gitopsguard.reconcile import reconcile

    upstream = Upstream(tmp_path / "git")
    upstream.write(
        "apps/a.yaml", CONFIGMAP.format(name="a", value="1").replace("name: a", "name: a\n  labels: {team: x}")
    )
    upstream.write("policies/team.yaml", REQUIRED_LABELS)
    upstream.commit()
    unit, parts = Unit(namespace, "apps", namespace), (Applier(admin_api), InventoryStore(admin_api))
    assert reconcile(unit, GitSource(SourceSpec(upstream.url), tmp_path / "gg"), *parts).error is None
    upstream.write("apps/b.yaml", CONFIGMAP.format(name="b", value="1").replace("name: b", "name: b\n  labels: oops"))
    upstream.commit()
    tenant_edits(dev_cluster, admin_api, namespace, "a")
    result = reconcile(unit, GitSource(SourceSpec(upstream.url), tmp_path / "gg"), *parts)
    assert result.error is not None and result.error.startswith("apps/b.yaml:")  # the file and line at fault
    assert "metadata.labels" in result.error
    assert value_of(client.CoreV1Api(admin_api), "a", namespace) == "1", "the last applied commit is still held"
    assert value_of(client.CoreV1Api(admin_api), "b", namespace) is None


@pytest.fixture
def slow_head(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[threading.Event, threading.Event]]:
    """The render of a commit holding ``apps/slow.yaml`` blocks (as kustomize on a fan-out commit may, up to
    its time limit) until released; ``entered`` is set once such a render has begun."""
    from gitopsguard.render.stored import RenderStore

    entered, release = threading.Event(), threading.Event()
    real = RenderStore.render

    def render(self: RenderStore, root: Path, path: str, commit: str) -> object:
        if (root / path / "slow.yaml").exists():
            entered.set()
            release.wait(60)
        return real(self, root, path, commit)

    monkeypatch.setattr(RenderStore, "render", render)
    yield entered, release
    release.set()


def test_drift_is_repaired_within_two_seconds_while_a_new_head_is_still_rendering(
    start: Start, admin_api: client.ApiClient, namespace: str, tmp_path: Path,
    dev_cluster: LiveCluster, slow_head: tuple[threading.Event, threading.Event],
) -> None:  # fmt: skip
    """Before: the loop rendered the new head itself, so a tenant's edit waited for the render to end."""
    entered, release = slow_head
    upstream = Upstream(tmp_path / "git")
    upstream.write("apps/a.yaml", CONFIGMAP.format(name="a", value="1"))
    upstream.commit()
    results: list[ReconcileResult] = []
    start(upstream, results)
    core = client.CoreV1Api(admin_api)
    eventually(lambda: value_of(core, "a", namespace) == "1")
    upstream.write("apps/slow.yaml", CONFIGMAP.format(name="b", value="1"))
    upstream.commit()
    assert entered.wait(15), "the new head's render began"
    tenant_edits(dev_cluster, admin_api, namespace, "a")
    assert repaired_within(core, namespace, 2.0) < 2.0
    assert value_of(core, "b", namespace) is None, "the head is applied only once it is judged"
    release.set()
    eventually(lambda: value_of(core, "b", namespace) == "1")


class WorkerBug(BaseException):
    """Beyond what a head may throw (``Exception``): a bug in the worker itself."""


def test_a_head_worker_that_dies_ends_the_process_loudly(
    admin_api: client.ApiClient, namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gitopsguard import lifeline
    from gitopsguard.heads import HeadWorker

    exits: list[int] = []
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)  # restored after the test
    lifeline.install(exit_process=exits.append)
    upstream = Upstream(tmp_path / "git")
    upstream.write("apps/a.yaml", CONFIGMAP.format(name="a", value="1"))
    upstream.commit()

    def render(checkout: Path, path: str, commit: str) -> tuple[()]:
        raise WorkerBug("a bug")

    worker = HeadWorker(Unit(namespace, "apps", namespace), GitSource(SourceSpec(upstream.url), tmp_path / "gg"),
                        Applier(admin_api), InventoryStore(admin_api), render, on_ready=lambda: None,
                        delay=lambda _: 60.0)  # fmt: skip
    stop = threading.Event()
    try:
        worker.start(stop).join(15)
        assert exits == [lifeline.EXIT_CODE] and lifeline.DEAD.is_set()
    finally:
        stop.set()
        lifeline.DEAD.clear()


def test_a_kind_the_live_cache_lists_wakes_the_loop_even_when_no_event_follows(
    admin_api: client.ApiClient, namespace: str
) -> None:
    """An object deleted between a pass's own read and the cache's first list comes as no event: without a
    wake on the list, the loop (which no longer wakes on its own fetches) left it deleted until the timer."""
    from gitopsguard.cluster.livecache import LiveCache

    woken = threading.Event()
    cache = LiveCache(Applier(admin_api), RawApi(admin_api), namespace, on_change=woken.set)
    stop = threading.Event()
    try:
        cache.track(("v1", "ConfigMap"), stop)
        assert woken.wait(10), "the first list of a kind wakes the loop"
    finally:
        stop.set()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the death is the point
def test_without_the_lifeline_a_dead_head_worker_stops_the_loop_with_an_error(
    admin_api: client.ApiClient, namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loop must not hold the last head forever on its own while nothing fetches any more."""
    from gitopsguard.errors import GitOpsGuardError
    from gitopsguard.render.stored import RenderStore

    def render(self: RenderStore, root: Path, path: str, commit: str) -> object:
        raise WorkerBug("a bug")

    monkeypatch.setattr(RenderStore, "render", render)
    upstream = Upstream(tmp_path / "git")
    upstream.write("apps/a.yaml", CONFIGMAP.format(name="a", value="1"))
    upstream.commit()
    controller = Controller(
        Unit(namespace, "apps", namespace), GitSource(SourceSpec(upstream.url), tmp_path / "gg"),
        Applier(admin_api), InventoryStore(admin_api), RawApi(admin_api), interval=60,
    )  # fmt: skip
    stop = threading.Event()
    started = time.monotonic()
    with pytest.raises(GitOpsGuardError, match="the thread that fetches and judges new commits died"):
        controller.run(stop)
    assert time.monotonic() - started < 10
    for thread in threading.enumerate():  # its death is reported within this test, not the next one's
        if thread.name == "heads":
            thread.join(5)


def test_a_restarted_loop_repairs_drift_while_its_first_head_is_still_rendering(
    start: Start, admin_api: client.ApiClient, namespace: str, tmp_path: Path,
    dev_cluster: LiveCluster, slow_head: tuple[threading.Event, threading.Event],
) -> None:  # fmt: skip
    """A new process knows no head yet: until its worker has judged one, it holds the last applied commit."""
    from gitopsguard.reconcile import reconcile

    entered, release = slow_head
    upstream = Upstream(tmp_path / "git")
    upstream.write("apps/a.yaml", CONFIGMAP.format(name="a", value="1"))
    upstream.commit()
    unit, parts = Unit(namespace, "apps", namespace), (Applier(admin_api), InventoryStore(admin_api))
    assert reconcile(unit, GitSource(SourceSpec(upstream.url), tmp_path / "gg"), *parts).error is None
    upstream.write("apps/slow.yaml", CONFIGMAP.format(name="b", value="1"))
    upstream.commit()
    core = client.CoreV1Api(admin_api)
    tenant_edits(dev_cluster, admin_api, namespace, "a")
    results: list[ReconcileResult] = []
    start(upstream, results)
    assert entered.wait(15), "the new head's render began"
    assert repaired_within(core, namespace, 3.0) < 3.0
    release.set()
    eventually(lambda: value_of(core, "b", namespace) == "1")


def _deep_file(root: Path, depth: int, text: str) -> None:
    """``root``/d/d/.../x.yaml, ``depth`` folders down (made one level at a time: Path.mkdir recurses)."""
    import os

    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root, os.O_RDONLY)
    try:
        for _ in range(depth):
            os.mkdir("d", dir_fd=fd)
            inner = os.open("d", os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = inner
        handle = os.open("x.yaml", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(handle, text.encode())
        os.close(handle)
    finally:
        os.close(fd)


@pytest.fixture
def deep_tmp_path(tmp_path: Path) -> Iterator[Path]:
    """tmp_path, emptied by ``rm -rf`` afterwards: pytest's own cleanup recurses and fails on deep folders
    (in every later session on this machine)."""
    yield tmp_path
    subprocess.run(["rm", "-rf", "--", *map(str, tmp_path.iterdir())], check=True)


def test_a_head_with_a_file_1500_folders_deep_is_refused_and_the_last_applied_commit_is_still_repaired(
    admin_api: client.ApiClient, namespace: str, deep_tmp_path: Path, dev_cluster: LiveCluster
) -> None:
    """Before: walking the folders raised RecursionError out of the pass ("internal error" in the loop)."""
    from gitopsguard.reconcile import reconcile

    upstream = Upstream(deep_tmp_path / "git")
    upstream.write("apps/a.yaml", CONFIGMAP.format(name="a", value="1"))
    upstream.commit()
    unit, parts = Unit(namespace, "apps", namespace), (Applier(admin_api), InventoryStore(admin_api))
    assert reconcile(unit, GitSource(SourceSpec(upstream.url), deep_tmp_path / "gg"), *parts).error is None
    _deep_file(upstream.work / "apps", 1500, CONFIGMAP.format(name="deep", value="1"))
    upstream.commit()
    tenant_edits(dev_cluster, admin_api, namespace, "a")
    result = reconcile(unit, GitSource(SourceSpec(upstream.url), deep_tmp_path / "gg"), *parts)
    assert result.error is not None and result.error.startswith("apps")
    assert value_of(client.CoreV1Api(admin_api), "a", namespace) == "1", "the last applied commit is still held"
    assert value_of(client.CoreV1Api(admin_api), "deep", namespace) is None


def test_a_fetch_failing_in_an_unexpected_way_refuses_the_head_and_the_worker_lives_on(
    admin_api: client.ApiClient, namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A commit git or GitPython chokes on must not end the worker (and, through the lifeline, the process
    again after every restart): it is a refused head like any other."""
    from gitopsguard.errors import SourceError
    from gitopsguard.heads import HeadWorker

    def fetch(self: GitSource, **_: object) -> object:
        raise UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")

    monkeypatch.setattr(GitSource, "fetch", fetch)
    ready = threading.Event()
    worker = HeadWorker(Unit(namespace, "apps", namespace), GitSource(SourceSpec("file:///x"), tmp_path / "gg"),
                        Applier(admin_api), InventoryStore(admin_api), lambda *_: (), on_ready=ready.set,
                        delay=lambda _: 60.0)  # fmt: skip
    stop = threading.Event()
    thread = worker.start(stop)
    try:
        assert ready.wait(10)
        head = worker.latest()
        assert head is not None and isinstance(head.refusal, SourceError)
        assert str(head.refusal).startswith(f"unit {namespace}: fetching the head failed (UnicodeDecodeError: ")
        assert thread.is_alive() and not worker.died.is_set()
    finally:
        stop.set()
        worker.fetch_now()
