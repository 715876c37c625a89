"""Server-side request forgery (issue 21, break 5): a team's webhook URL comes from a tenant's Secret, so it
is called only when it is https, its host is on the operator's allowlist, and its host resolves to public
addresses only (unless the operator allows private ones); redirects are never followed, and the
connection goes to the address that was checked."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from gitopsguard.errors import NotifyError
from gitopsguard.notify.notices import Notice
from gitopsguard.notify.outbound import OutboundPolicy, check_url, forbidden
from gitopsguard.notify.slack import Failure, SlackNotifier, SlackSettings
from tests.fakeslack import WEBHOOK_PATH, FakeSlack, shared_tls, trusting

WHERE = "Secret/evil/gitopsguard-slack"


def team_notice() -> Notice:
    return Notice("live-violation", "Pod/evil/p", "evil", "Reported.", "GG1103", "Fix it.", "k")


def deliver_to_team(fake: FakeSlack, policy: OutboundPolicy, team_url: str, **extra: Any) -> list[Failure]:
    failures: list[Failure] = []
    settings = SlackSettings(min_interval=0, outbound=policy)
    slack = SlackNotifier(settings, team_webhook=lambda _: team_url, on_failure=failures.append, **extra)
    slack.notify([team_notice()])
    slack.drain(timeout=10)
    return failures


def never(host: str, port: int) -> Sequence[str]:
    raise AssertionError(f"{host} must be refused before it is resolved")


def test_a_team_webhook_on_a_loopback_address_is_refused_by_default() -> None:
    fake, tls = FakeSlack(), shared_tls()
    with fake.serving(tls) as url:
        policy = OutboundPolicy(hosts=frozenset({"localhost"}), ca_file=str(tls.cert))  # no allow_private
        failures = deliver_to_team(fake, policy, f"{url}{WEBHOOK_PATH}")
    assert fake.paths == []
    assert [str(f) for f in failures] == [
        f"Slack (team/evil): live-violation for Pod/evil/p not delivered: {WHERE}: the webhook's host resolves to "
        "a loopback address, which gitopsguard does not call"
    ]


def test_the_same_webhook_is_called_when_the_operator_allows_private_addresses() -> None:
    fake, tls = FakeSlack(), shared_tls()
    with fake.serving(tls) as url:
        failures = deliver_to_team(fake, trusting(tls), f"{url}{WEBHOOK_PATH}")
    assert failures == [] and len(fake.texts(WEBHOOK_PATH)) == 1


def test_a_redirect_from_a_team_webhook_is_not_followed() -> None:
    fake, tls = FakeSlack(), shared_tls()
    with fake.serving(tls) as url:
        fake.stuck[WEBHOOK_PATH] = (302, {"Location": f"{url}/services/metadata-stand-in"})
        failures = deliver_to_team(fake, trusting(tls), f"{url}{WEBHOOK_PATH}")
    assert fake.paths == [WEBHOOK_PATH]
    assert len(failures) == 1 and "redirect (HTTP 302)" in failures[0].why and url not in failures[0].why


def test_the_connection_goes_to_the_address_that_was_checked() -> None:
    """``fake-slack.test`` resolves nowhere but in this resolver; the message arrives, so the connection
    used the checked address rather than looking the name up again (DNS rebinding gains nothing)."""
    fake, tls, asked = FakeSlack(), shared_tls(), []

    def resolve(host: str, port: int) -> Sequence[str]:
        asked.append(host)
        return ["127.0.0.1"]

    with fake.serving(tls) as url:
        policy = OutboundPolicy(frozenset({"fake-slack.test"}), allow_private=True, ca_file=str(tls.cert))
        team_url = url.replace("localhost", "fake-slack.test") + WEBHOOK_PATH
        failures = deliver_to_team(fake, policy, team_url, resolve=resolve)
    assert failures == [] and len(fake.texts(WEBHOOK_PATH)) == 1 and asked == ["fake-slack.test"]


@pytest.mark.parametrize("url", [
    "http://hooks.slack.com/services/T/B/x",  # not https
    "https://kubernetes.default.svc/api/v1/secrets", "https://kubernetes.default.svc.cluster.local/",
    "https://169.254.169.254/latest/meta-data/", "https://127.0.0.1/", "https://[::1]/", "https://[::ffff:127.0.0.1]/",
    "https://hooks.slack.com@127.0.0.1/services/x",  # the host is 127.0.0.1
    "https://user:pw@hooks.slack.com/services/x", "https://hooks.slack.com.evil.example/services/x",
    "https://hooks.slack.com:99999/x", "ftp://hooks.slack.com/x", "hooks.slack.com/services/x", "",
    "https://hooks.slack.com/services/\x00", "https://hooks.slack.com/" + "a" * 3000,
    "https://hooks.slack.com\u3002evil.example/", "https://HOOKS.SLACK.COM\uff0eevil/",
])  # fmt: skip
def test_urls_off_the_allowlist_or_not_https_are_refused_before_any_lookup(url: str) -> None:
    with pytest.raises(NotifyError) as refused:
        check_url(url, OutboundPolicy(), WHERE, never)
    assert str(refused.value).startswith(f"{WHERE}: ") and "169.254" not in str(refused.value)


FORBIDDEN_NETWORKS = ["127.0.0.0/8", "169.254.0.0/16", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
                      "100.64.0.0/10", "224.0.0.0/4", "240.0.0.0/4", "0.0.0.0/8", "::1/128", "::/128",
                      "fe80::/10", "fc00::/7", "ff00::/8"]  # fmt: skip
V4_FORBIDDEN = [n for n in FORBIDDEN_NETWORKS if "." in n]


@st.composite
def forbidden_addresses(draw: st.DrawFn) -> str:
    network = ipaddress.ip_network(draw(st.sampled_from(FORBIDDEN_NETWORKS)))
    address = network[draw(st.integers(0, network.num_addresses - 1))]
    wrap = draw(st.sampled_from(["plain", "mapped", "nat64", "6to4"])) if address.version == 4 else "plain"
    if wrap == "mapped":
        return f"::ffff:{address}"
    if wrap == "nat64":
        return str(ipaddress.IPv6Address(int(ipaddress.IPv6Address("64:ff9b::")) | int(address)))
    if wrap == "6to4":
        return str(ipaddress.IPv6Address((0x2002 << 112) | (int(address) << 80)))
    return str(address)


@given(forbidden_addresses(), st.sampled_from(["8.8.8.8", "2606:4700::1111"]), st.booleans())
@example("169.254.169.254", "8.8.8.8", False)
@example("::ffff:169.254.169.254", "8.8.8.8", True)
@example("64:ff9b::a9fe:a9fe", "8.8.8.8", True)
@example("10.96.0.1", "8.8.8.8", True)  # a service network's kubernetes.default
def test_an_allowed_host_resolving_to_any_forbidden_address_is_refused(bad: str, good: str, bad_first: bool) -> None:
    """The general rule: one forbidden address among those a name resolves to refuses the name."""
    answer = [bad, good] if bad_first else [good, bad]
    assert forbidden(bad) is not None
    with pytest.raises(NotifyError, match=r"resolves to a .* address, which gitopsguard does not call"):
        check_url("https://hooks.slack.com/services/T/B/x", OutboundPolicy(), WHERE, lambda h, p: answer)


def test_an_allowed_host_resolving_to_public_addresses_is_accepted_and_pinned() -> None:
    target = check_url("https://hooks.slack.com/services/T/B/x?y=1", OutboundPolicy(), WHERE,
                       lambda h, p: ["8.8.8.8", "2606:4700::1111", "8.8.8.8"])  # fmt: skip
    assert (target.host, target.port, target.path) == ("hooks.slack.com", 443, "/services/T/B/x?y=1")
    assert target.addresses == ("8.8.8.8", "2606:4700::1111")


def test_by_default_only_hooks_slack_com_is_allowed_and_private_addresses_are_not() -> None:
    policy = SlackSettings().outbound
    assert policy.hosts == {"hooks.slack.com"} and not policy.allow_private


def test_the_settings_never_show_the_token_or_the_platform_webhook() -> None:
    settings = SlackSettings(token="xoxb-secret-token", webhook_url="https://hooks.slack.com/services/T/B/secret")
    assert "secret" not in repr(settings) and "secret" not in str(settings)
