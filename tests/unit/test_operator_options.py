"""What the operator allows reaches the parts that enforce it: remote kustomize bases, and where a team's
webhook may point. Both default to the closed choice."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitopsguard.cli import slack_settings
from gitopsguard.commands.reconcile_once import ReconcileOptions, build_parts
from gitopsguard.errors import NotifyError
from gitopsguard.notify.outbound import Resolver, check_url

KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
"""


def options(
    tmp_path: Path, *, repo: str | None = None, allow_remote_bases: bool = False, ssh_known_hosts: Path | None = None
) -> ReconcileOptions:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG)
    return ReconcileOptions(repo=repo or str(tmp_path), branch="main", path="apps", unit=None, namespace="default",
                            kubeconfig=kubeconfig, context=None, workdir=tmp_path / "work", allow_rewind=False,
                            allow_mass_prune=False, allow_remote_bases=allow_remote_bases,
                            ssh_known_hosts=ssh_known_hosts)  # fmt: skip


def test_remote_bases_are_refused_unless_the_operator_allows_them(tmp_path: Path) -> None:
    closed, _, _ = build_parts(options(tmp_path))
    opened, _, _ = build_parts(options(tmp_path, allow_remote_bases=True))
    assert not closed.render_settings.allow_remote_bases
    assert opened.render_settings.allow_remote_bases
    assert closed.settings != opened.settings  # the same commit under the other choice is applied again


def test_an_scp_like_address_with_a_password_is_a_remote_never_a_local_path(tmp_path: Path) -> None:
    (tmp_path / "known_hosts").write_text("")  # an ssh address needs the operator's host keys
    repo = "deploy:s3cret@git.example.com:org/repo.git"
    _, source, _ = build_parts(options(tmp_path, repo=repo, ssh_known_hosts=tmp_path / "known_hosts"))
    assert not source.spec.url.startswith("file:")


def resolve_to(address: str) -> Resolver:
    return lambda host, port: [address]


def test_team_webhooks_are_refused_on_private_addresses_unless_the_operator_allows_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GITOPSGUARD_SLACK_WEBHOOK", "https://hooks.slack.com/services/T/B/x")
    url = "https://hooks.example.internal/services/T/B/x"
    closed = slack_settings(None, "https://slack.com/api/", ("hooks.example.internal",))
    with pytest.raises(NotifyError):
        check_url(url, closed.outbound, "shop/gitopsguard-slack", resolve_to("10.0.0.7"))
    opened = slack_settings(None, "https://slack.com/api/", ("hooks.example.internal",), allow_private=True)
    assert check_url(url, opened.outbound, "shop/gitopsguard-slack", resolve_to("10.0.0.7")).addresses == ("10.0.0.7",)


def test_a_team_webhook_host_the_operator_did_not_name_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITOPSGUARD_SLACK_WEBHOOK", "https://hooks.slack.com/services/T/B/x")
    default = slack_settings(None, "https://slack.com/api/")
    with pytest.raises(NotifyError):
        check_url("https://evil.example/x", default.outbound, "shop/gitopsguard-slack", resolve_to("93.184.216.34"))
