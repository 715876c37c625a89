"""A tenant's Secret gitopsguard-slack, on the real API server, cannot silence, stall or redirect notices:
a value that is not text, an address inside the cluster or a Secret gitopsguard may not read fails that
team alone, is recorded in the audit log and the metric (naming the namespace and Secret, never the
value), and the platform channel keeps hearing. Wired as `gitopsguard run` wires it
(``run_loop.notifications``)."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import pytest
from kubernetes import client
from prometheus_client import generate_latest

from gitopsguard.audit import AuditLog
from gitopsguard.cluster.rest import RawApi
from gitopsguard.cluster.secrets import SecretData
from gitopsguard.commands.run_loop import notifications
from gitopsguard.grants.keeper import Transition
from gitopsguard.model import Action, Change, Drift, ObjectKey, Reason
from gitopsguard.notify.metrics import Metrics
from gitopsguard.notify.notices import Notice
from gitopsguard.notify.slack import Failure, SlackNotifier, SlackSettings, TeamWebhooks
from gitopsguard.reconcile import ReconcileResult
from tests.fakeslack import TOKEN, WEBHOOK_PATH, FakeSlack, shared_tls, trusting
from tests.integration.conftest import LiveCluster

pytestmark = pytest.mark.integration


def team_secret(api: client.ApiClient, namespace: str, value: bytes) -> None:
    client.CoreV1Api(api).create_namespaced_secret(namespace, client.V1Secret(
        metadata=client.V1ObjectMeta(name="gitopsguard-slack"),
        data={"webhook-url": base64.b64encode(value).decode()}))  # fmt: skip


def violation(namespace: str, name: str) -> Notice:
    return Notice("live-violation", f"Pod/{namespace}/{name}", namespace, "Reported.", "GG1103 HIGH (pss)",
                  "Fix it.", f"violation|{namespace}|{name}")  # fmt: skip


def drift(namespace: str) -> ReconcileResult:
    key, drift = ObjectKey("apps", "Deployment", namespace, "web"), Drift(deleted=False, writer="kubectl")
    change = Change(key, "apps/v1", Action.CONFIGURED, Reason.DRIFTED, drift=drift)
    return ReconcileResult("apps", "a" * 40, (change,))


def platform(name: str) -> Notice:
    return Notice("reconcile-failing", f"unit {name}", "", "failed", "commit x", "See status.", f"failing|{name}")


def wait_for_text(fake: FakeSlack, text: str, timeout: float = 5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(text in t for t in fake.texts()):
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("value", [
    b"\xff\xfehttps://hooks.slack.com/services/T/B/x",  # not UTF-8
    b"https://kubernetes.default.svc/api/v1/namespaces/kube-system/secrets",
    b"https://169.254.169.254/latest/meta-data/iam/security-credentials/",
    b"http://hooks.slack.com/services/T/B/x",
])  # fmt: skip
def test_a_bad_team_secret_is_refused_and_recorded_and_the_platform_channel_still_hears(
    admin_api: client.ApiClient, namespace: str, tmp_path: Path, value: bytes
) -> None:
    team_secret(admin_api, namespace, value)
    fake, metrics, log = FakeSlack(), Metrics(), AuditLog(tmp_path / "audit.jsonl")
    with fake.serving() as url:
        news = notifications(admin_api, SlackSettings(token=TOKEN, channel="#ops", base_url=f"{url}/api/",
                                                      min_interval=0), log, metrics)  # fmt: skip
        news.on_result(drift(namespace))  # the team's news first
        time.sleep(0.5)
        news.on_transitions([Transition("alice-debug (access/grants/alice.yaml)", "expired", "by the clock")])
        assert wait_for_text(fake, "alice-debug"), fake.texts()
        news.on_transitions([Transition("bob-debug (access/grants/bob.yaml)", "expired", "by the clock")])
        assert wait_for_text(fake, "bob-debug"), "the delivery threads must live on"
    records = [r for r in log.records() if r.event == "notify-failed"]
    assert len(records) == 1 and records[0].subject == f"slack/team/{namespace}"
    assert f"Secret/{namespace}/gitopsguard-slack: " in records[0].detail
    assert value.decode("utf-8", "replace").split("//")[-1] not in records[0].detail  # never the value
    exposed = generate_latest(metrics.registry).decode()
    assert f'gitopsguard_notification_failures_total{{destination="team/{namespace}"}} 1.0' in exposed


def test_a_team_secret_gitopsguard_may_not_read_fails_that_team_alone(
    dev_cluster: LiveCluster, admin_api: client.ApiClient, namespace: str
) -> None:
    team_secret(admin_api, namespace, b"https://hooks.slack.com/services/T/B/x")
    failures: list[Failure] = []
    fake = FakeSlack()
    with fake.serving() as url:
        alice = dev_cluster.api("dev-alice")  # no rights on Secrets: the API server answers 403
        teams = TeamWebhooks(SecretData(RawApi(alice)))
        slack = SlackNotifier(SlackSettings(token=TOKEN, channel="#ops", base_url=f"{url}/api/", min_interval=0),
                              team_webhook=teams, on_failure=failures.append)  # fmt: skip
        slack.notify([violation(namespace, "shell"), platform("apps")])
        slack.drain()
    assert any("unit apps" in t for t in fake.texts())
    why = f"Secret/{namespace}/gitopsguard-slack: the API server refused it; gitopsguard needs get on this Secret"
    assert [(f.destination, f.why) for f in failures] == [(f"team/{namespace}", why)]


def test_a_team_webhook_in_a_real_secret_gets_its_copy_when_the_operator_allows_the_fake(
    admin_api: client.ApiClient, namespace: str
) -> None:
    fake, tls, failures = FakeSlack(), shared_tls(), list[Failure]()
    with fake.serving() as url, fake.serving(tls) as team_url:
        team_secret(admin_api, namespace, f"{team_url}{WEBHOOK_PATH}\n".encode())
        settings = SlackSettings(token=TOKEN, channel="#ops", base_url=f"{url}/api/", min_interval=0,
                                 outbound=trusting(tls))  # fmt: skip
        slack = SlackNotifier(
            settings, team_webhook=TeamWebhooks(SecretData(RawApi(admin_api))), on_failure=failures.append
        )
        slack.notify([violation(namespace, "shell")])
        slack.drain()
    assert failures == [] and len(fake.texts(WEBHOOK_PATH)) == 1 and len(fake.texts()) == 1


def test_the_same_team_secret_is_refused_without_the_operators_allowance(
    admin_api: client.ApiClient, namespace: str
) -> None:
    fake, tls, failures = FakeSlack(), shared_tls(), list[Failure]()
    with fake.serving(tls) as team_url:
        team_secret(admin_api, namespace, f"{team_url}{WEBHOOK_PATH}".encode())
        slack = SlackNotifier(SlackSettings(min_interval=0), team_webhook=TeamWebhooks(SecretData(RawApi(admin_api))),
                              on_failure=failures.append)  # fmt: skip
        slack.notify([violation(namespace, "shell")])
        slack.drain()
    assert fake.paths == [] and len(failures) == 1 and "not one gitopsguard may call" in failures[0].why
