"""Only reviewed revisions reach the cluster, against the real API server: a straight push is refused and
the cluster keeps the last applied commit; the same change through a signed merge is applied; break glass
applies one pass and is audited; status, the audit log and an Event name who approved or what was refused.
The attacker is a contributor who can push to the default branch."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from gitopsguard.audit import AuditLog
from gitopsguard.cli import main
from gitopsguard.cluster.inventory import CONTROLLER_NAMESPACE, InventoryStore
from tests.fakeslack import TOKEN, FakeSlack
from tests.integration.conftest import LiveCluster
from tests.kube import data_of
from tests.reviewrepo import ReviewRepo
from tests.waiting import eventually

pytestmark = pytest.mark.integration


def configmap(value: str) -> dict[str, str]:
    return {"apps/web.yaml": f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: web}}\ndata: {{value: '{value}'}}\n"}


class Cli:
    def __init__(self, repo: ReviewRepo, namespace: str, cluster: LiveCluster, tmp: Path) -> None:
        self.repo, self.namespace, self.cluster, self.tmp = repo, namespace, cluster, tmp
        self.audit = tmp / "audit.jsonl"

    def reconcile(self, *extra: str) -> Result:
        return CliRunner().invoke(main, [
            "reconcile", "--repo", str(self.repo.work), "--path", "apps", "--unit", self.namespace,
            "--namespace", self.namespace, "--kubeconfig", str(self.cluster.kubeconfig),
            "--workdir", str(self.tmp / "work"), "--audit-log", str(self.audit), "--policies-path", "",
            "--review-mode", "signed-merge", "--trust", str(self.repo.trust), "--trust-from", self.repo.base, *extra,
        ])  # fmt: skip

    def value(self, api: client.ApiClient) -> str:
        """The ConfigMap's value; "" while it does not exist."""
        try:
            return str(data_of(client.CoreV1Api(api).read_namespaced_config_map("web", self.namespace))["value"])
        except ApiException as error:
            if error.status == 404:
                return ""
            raise

    def events(self) -> list[tuple[str, str]]:
        return [(r.event, r.detail) for r in AuditLog(self.audit).records()]


@pytest.fixture
def cli(tmp_path: Path, namespace: str, dev_cluster: LiveCluster) -> Cli:
    return Cli(ReviewRepo(tmp_path / "repo"), namespace, dev_cluster, tmp_path)


def test_a_straight_push_is_refused_and_the_same_change_applies_after_a_signed_merge(
    cli: Cli, admin_api: client.ApiClient
) -> None:
    cli.repo.change("alice", "web", configmap("1"))
    merged = cli.repo.merge("carol", "web")
    first = cli.reconcile()
    assert first.exit_code == 0, first.output
    assert cli.value(admin_api) == "1"
    assert ("revision-reviewed", f"first sync, trusted from {cli.repo.base[:12]} (--trust-from); "
            f"{merged[:12]} merge signed by carol") in cli.events()  # fmt: skip

    cli.repo.git("checkout", "-q", "main", person="alice")
    pushed = cli.repo.push("alice", configmap("2"))
    refused = cli.reconcile()
    assert refused.exit_code == 2, refused.output
    assert f"commit {pushed[:12]}" in refused.output and "pushed straight, signed by alice" in refused.output
    assert "apps/web.yaml: pushed without review" in refused.output
    assert cli.value(admin_api) == "1"  # the cluster keeps the last applied commit
    inventory = InventoryStore(admin_api).load(cli.namespace)
    assert (inventory.last_applied, inventory.last_attempted) == (merged, pushed)
    assert ("revision-unreviewed", f"commit {pushed} (pushed straight, signed by alice): apps/web.yaml: pushed "
            "without review; needs a merge approved by any approver") in cli.events()  # fmt: skip
    events = client.CoreV1Api(admin_api).list_namespaced_event(CONTROLLER_NAMESPACE).items
    assert any(e.reason == "UnreviewedRevision" and e.message is not None and pushed[:12] in e.message
               and e.involved_object.name == f"gitopsguard-inventory-{cli.namespace}" for e in events)  # fmt: skip

    cli.repo.git("revert", "--no-edit", "-S", "HEAD", person="alice")
    cli.repo.change("alice", "again", configmap("2"))
    remerged = cli.repo.merge("carol", "again")
    applied = cli.reconcile()
    assert applied.exit_code == 0, applied.output
    assert cli.value(admin_api) == "2"
    status = CliRunner().invoke(main, ["status", "--unit", cli.namespace, "--kubeconfig", str(cli.cluster.kubeconfig)])
    assert f"reviewed:       {remerged[:12]} merge signed by carol" in status.output


def test_break_glass_applies_one_pass_loudly_and_the_next_is_held_to_the_rules(
    cli: Cli, admin_api: client.ApiClient
) -> None:
    cli.repo.change("alice", "web", configmap("1"))
    cli.repo.merge("carol", "web")
    assert cli.reconcile().exit_code == 0
    emergency = cli.repo.push("alice", configmap("hotfix"))
    broken = cli.reconcile("--break-glass", "INC-42: payments down")
    assert broken.exit_code == 0, broken.output
    assert "BREAK GLASS" in broken.output
    assert cli.value(admin_api) == "hotfix"
    assert ("break-glass", "review skipped: INC-42: payments down") in cli.events()
    assert InventoryStore(admin_api).load(cli.namespace).last_applied == emergency

    cli.repo.push("alice", configmap("again"))
    assert cli.reconcile().exit_code == 2
    assert cli.value(admin_api) == "hotfix"


def test_verify_range_answers_offline_for_a_repository_ci(cli: Cli) -> None:
    cli.repo.change("alice", "web", configmap("1"))
    merged = cli.repo.merge("carol", "web")
    ok = CliRunner().invoke(main, ["verify-range", cli.repo.base, merged, "--repo", str(cli.repo.work),
                                   "--trust", str(cli.repo.trust)])  # fmt: skip
    assert ok.exit_code == 0, ok.output
    assert f"{merged[:12]} merge signed by carol (1 paths at the head)" in ok.output
    pushed = cli.repo.push("alice", configmap("2"))
    refused = CliRunner().invoke(main, ["verify-range", merged, "HEAD", "--repo", str(cli.repo.work),
                                        "--trust", str(cli.repo.trust)])  # fmt: skip
    assert refused.exit_code == 1, refused.output
    assert f"commit {pushed[:12]}" in refused.output


def test_the_run_loop_refuses_a_straight_push_tells_slack_once_and_applies_the_reviewed_merge(
    cli: Cli, admin_api: client.ApiClient
) -> None:
    cli.repo.change("alice", "web", configmap("1"))
    cli.repo.merge("carol", "web")
    fake = FakeSlack()
    with fake.serving() as url:
        process = subprocess.Popen([
            sys.executable, "-m", "gitopsguard", "run", "--repo", str(cli.repo.work), "--path", "apps",
            "--unit", cli.namespace, "--namespace", cli.namespace, "--kubeconfig", str(cli.cluster.kubeconfig),
            "--workdir", str(cli.tmp / "loop"), "--audit-log", str(cli.audit), "--interval", "1",
            "--policies-path", "", "--no-live-scan", "--metrics-address", "", "--review-mode", "signed-merge",
            "--trust", str(cli.repo.trust), "--trust-from", cli.repo.base,
            "--slack-channel", "#platform", "--slack-api-url", f"{url}/api/",
        ], env={**os.environ, "GITOPSGUARD_SLACK_TOKEN": TOKEN}, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True)  # fmt: skip
        output = ""
        try:
            eventually(lambda: cli.value(admin_api) == "1", timeout=30, every=0.2)
            cli.repo.push("alice", configmap("2"))
            eventually(lambda: any("Unreviewed revision refused" in t for t in fake.texts()), timeout=30, every=0.2)
            time.sleep(3)  # more passes over the same refused head: Slack hears once
            assert cli.value(admin_api) == "1"
            cli.repo.git("revert", "--no-edit", "-S", "HEAD", person="alice")
            cli.repo.change("alice", "again", configmap("2"))
            cli.repo.merge("carol", "again")
            eventually(lambda: cli.value(admin_api) == "2", timeout=30, every=0.2)
        except AssertionError:
            process.send_signal(signal.SIGTERM)
            raise AssertionError(process.communicate(timeout=20)[0]) from None
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                output, _ = process.communicate(timeout=20)
    assert sum("Unreviewed revision refused" in t for t in fake.texts()) == 1, output
