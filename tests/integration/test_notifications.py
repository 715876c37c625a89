"""The scripted scenario issue 7 asks for: a blocked revision, a live deletion after its grace period, and
a grant that activates and expires, each told to Slack exactly once (the real slack_sdk against a local
fake of Slack's Web API), with real git, the real API server and real signing keys."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from kubernetes import client

from gitopsguard.cluster.apply import Applier
from gitopsguard.cluster.inventory import InventoryStore
from gitopsguard.cluster.rest import RawApi
from gitopsguard.grants.bindings import Binder, install_rbac
from gitopsguard.grants.keeper import GrantKeeper
from gitopsguard.grants.load import load_escalation_policies
from gitopsguard.grants.rbac import grants_rbac
from gitopsguard.grants.signed import SignedMergeVerifier, load_trust
from gitopsguard.grants.store import GrantStore
from gitopsguard.notify import Notifications
from gitopsguard.notify.slack import SlackNotifier, SlackSettings
from gitopsguard.policy import parse_policies
from gitopsguard.reconcile import Unit, reconcile
from gitopsguard.scan.scanner import Scanner
from gitopsguard.source import GitSource, SourceSpec
from tests.fakeslack import TOKEN, FakeSlack
from tests.gitrepo import Upstream
from tests.integration.test_live_scan import POLICIES, deployment
from tests.integration.test_policy_gate import POD, POLICY
from tests.kube import as_model
from tests.signedrepo import SignedRepo, grant
from tests.waiting import eventually

pytestmark = pytest.mark.integration


def test_slack_hears_each_event_of_the_scenario_exactly_once(
    admin_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    fake = FakeSlack()
    with fake.serving() as url:
        slack = SlackNotifier(SlackSettings(token=TOKEN, channel="#platform", base_url=f"{url}/api/", min_interval=0))
        news = Notifications(slack.notify)

        # 1. A revision with a privileged Pod: blocked, and blocked again on the next pass.
        upstream = Upstream(tmp_path / "git")
        upstream.write("policies/p.yaml", POLICY)
        upstream.write("apps/pod.yaml", POD.format(name="shell", privileged="true"))
        upstream.commit()
        unit = Unit(namespace, "apps", default_namespace=namespace)
        for _ in range(2):
            result = reconcile(unit, GitSource(SourceSpec(upstream.url), tmp_path / "gg"), Applier(admin_api),
                               InventoryStore(admin_api))  # fmt: skip
            assert result.error and "blocked by policy" in result.error
            news.on_result(result)

        # 2. A hand-made Deployment: announced with its deletion time, then deleted after 2 s.
        client.AppsV1Api(admin_api).create_namespaced_deployment(
            namespace, as_model(client.V1Deployment, deployment("stray", {}))
        )
        stop = threading.Event()
        scanner = Scanner(Applier(admin_api), RawApi(admin_api), parse_policies({"p.yaml": POLICIES}),
                          backup_dir=tmp_path / "backups", namespaces=frozenset({namespace}),
                          announce=news.on_announcements)  # fmt: skip
        threading.Thread(target=scanner.run, args=(stop,), daemon=True).start()
        try:
            eventually(lambda: any("Workload deleted by policy" in t for t in fake.texts()), timeout=30, every=0.1)
        finally:
            stop.set()

        # 3. A grant: signed request, signed merge, active for 3 s, then expired by the controller's clock.
        repo = SignedRepo(tmp_path / "signed", namespace)
        install_rbac(admin_api, grants_rbac(load_escalation_policies(repo.work)))
        repo.request("alice", "ask", "access/grants/alice.yaml", grant("alice-debug", namespace, "3s"))
        repo.merge("bob", "ask")
        keeper = GrantKeeper(Binder(admin_api), GrantStore(RawApi(admin_api), namespace))
        verifier = SignedMergeVerifier(repo.work, load_trust(repo.trust), repo.root / "state")
        news.on_transitions(keeper.sync(repo.work, verifier, repo.blob_of))
        deadline = time.monotonic() + 15
        while keeper.next_expiry() is not None and time.monotonic() < deadline:
            news.on_transitions(keeper.expire_due())
            time.sleep(0.2)
        news.on_transitions(keeper.sync(repo.work, verifier, repo.blob_of))  # nothing new: nothing said
        slack.drain()

    titles = [t.split("*")[1] for t in fake.texts()]
    assert titles == ["Revision blocked by policy", "Workload will be deleted", "Workload deleted by policy",
                      "Access granted", "Access expired"], fake.texts()  # fmt: skip
    blocked, scheduled, deleted, granted, expired = fake.texts()
    assert "GG1103 (no-privileged)" in blocked and f"Pod/{namespace}/shell at apps/pod.yaml:1" in blocked
    assert "Will be deleted at" in scheduled and "GG3001" in scheduled
    assert "backup:" in deleted
    assert "approved by bob" in granted and "alice-debug" in granted
    assert "by the controller clock" in expired
    assert slack.failures == 0
