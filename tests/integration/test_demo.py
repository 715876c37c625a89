"""The demo's story on the real API server (issue 20): with the loop in signed-merge review, alice's change
pushed straight to main is refused and the cluster keeps its state; the same change merged by carol with a
signed merge is applied; and the policy gate still refuses a privileged Pod that carol's review let through.

The demo itself starts its own control plane (``make demo``); these tests run its steps on the test cluster
instead, with the loop the demo starts (``start_loop``) under a unit of the test's own."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from gitopsguard.cluster.inventory import InventoryStore
from gitopsguard.commands.demo import DemoLoop, demo_repository, show_policy_gate, start_loop
from gitopsguard.commands.demo_review import DemoPeople, demo_people, show_review
from tests.integration.conftest import LiveCluster

pytestmark = pytest.mark.integration
DEMO_NAMESPACES = ("shop", "payments")  # what clusters/dev of repo-template applies


@dataclass(frozen=True)
class Demo:
    people: DemoPeople
    repo: Path
    loop: DemoLoop
    unit: str


def _gone(api: client.ApiClient, timeout: float = 90.0) -> None:
    """Wait until the template's namespaces are gone (an earlier test's may still be terminating)."""
    core, deadline = client.CoreV1Api(api), time.monotonic() + timeout
    while time.monotonic() < deadline:
        names = {n.metadata.name for n in core.list_namespace().items}
        if not names & set(DEMO_NAMESPACES):
            return
        time.sleep(0.5)
    raise AssertionError(f"namespaces {DEMO_NAMESPACES} still there after {timeout} s")


def _delete_namespaces(api: client.ApiClient) -> None:
    for name in DEMO_NAMESPACES:
        try:
            client.CoreV1Api(api).delete_namespace(name)
        except ApiException as error:
            if error.status != 404:
                raise


@pytest.fixture
def demo(tmp_path: Path, admin_api: client.ApiClient, dev_cluster: LiveCluster, namespace: str) -> Iterator[Demo]:
    _gone(admin_api)
    people = demo_people(tmp_path / "demo-keys")
    repo = demo_repository(tmp_path / "demo-repo", people)
    start = people.git(repo, "carol", "rev-parse", "HEAD").strip()
    loop = start_loop(admin_api, repo, tmp_path, people.reviewer(start, tmp_path / "review"), unit=namespace)
    try:
        first = loop.first()
        assert first.error is None, first.error
        yield Demo(people, repo, loop, namespace)
    finally:
        loop.close()
        _delete_namespaces(admin_api)


def test_the_demo_refuses_alices_straight_push_and_applies_the_same_change_after_carols_signed_merge(
    demo: Demo, admin_api: client.ApiClient, capsys: pytest.CaptureFixture[str]
) -> None:
    shown = show_review(admin_api, demo.repo, demo.people, demo.loop.results)
    out = capsys.readouterr().out
    assert shown is not None and shown.refused is not None, out
    assert f"commit {shown.pushed[:12]} 'Log at trace level in dev' (pushed straight, signed by alice)" in out
    assert "clusters/dev/kustomization.yaml: pushed without review; needs a merge approved by any approver" in out
    assert shown.kept == "debug"  # the cluster kept the last applied commit's value
    assert shown.applied is not None, out
    assert shown.after == "trace"
    assert f"reviewed: {shown.merged[:12]} merge signed by carol" in out
    assert InventoryStore(admin_api).load(demo.unit).last_applied == shown.merged


def test_the_demo_policy_gate_still_refuses_a_privileged_pod_carol_merged_and_her_revert_applies(
    demo: Demo, admin_api: client.ApiClient, capsys: pytest.CaptureFixture[str]
) -> None:
    show_policy_gate(demo.repo, demo.people, demo.loop.results)
    out = capsys.readouterr().out
    assert "blocked by policy" in out and "carol reverted the merge" in out, out
    assert "was not reviewed" not in out
    head = demo.people.git(demo.repo, "carol", "rev-parse", "HEAD").strip()
    assert InventoryStore(admin_api).load(demo.unit).last_applied == head
    pods = client.CoreV1Api(admin_api).list_namespaced_pod("shop").items
    assert "debug-shell" not in {p.metadata.name for p in pods}
