"""Markup injection (issue 21, break 4): text from objects reaches Slack escaped, so that a tenant cannot ping
a channel (``<!channel>``, ``<!here>``, ``<@U123>``) or disguise a link (``<https://evil.example|x>``) through a
field-manager name, a capability or an ownerReference. Checked on what the fake Slack receives."""

from __future__ import annotations

import html
from datetime import UTC, datetime, timedelta

from hypothesis import example, given
from hypothesis import strategies as st

from gitopsguard.model import Action, Change, Drift, ObjectKey, Reason
from gitopsguard.notify.mrkdwn import FIELD_LIMIT, escape
from gitopsguard.notify.notices import TITLES, Notice, from_announcements, from_result
from gitopsguard.notify.slack import SlackNotifier, SlackSettings
from gitopsguard.plan.diff import who_changed
from gitopsguard.policy.live import Outcome, Standing, judge
from gitopsguard.policy.model import Finding, LiveAction, Severity
from gitopsguard.policy.packs.pss_controls import capabilities_baseline
from gitopsguard.policy.pods import view
from gitopsguard.reconcile import ReconcileResult
from gitopsguard.scan.judged import Announcement
from tests.fakeslack import TOKEN, FakeSlack

MARKUP = ("<!channel>", "<!here>", "<https://evil.example|x>", "<@U123>")
HOSTILE = "<!channel> <!here> <https://evil.example|click> <@U123>"


def delivered(notices: list[Notice]) -> list[str]:
    fake = FakeSlack()
    with fake.serving() as url:
        slack = SlackNotifier(SlackSettings(token=TOKEN, channel="#ops", base_url=f"{url}/api/", min_interval=0))
        slack.notify(notices)
        slack.drain()
    return fake.texts()


def test_a_field_manager_name_in_a_drift_notice_is_escaped() -> None:
    live = {"metadata": {"managedFields": [{"manager": HOSTILE, "operation": "Update", "time": "2026-01-01T00:00:00Z",
                                            "fieldsV1": {"f:spec": {}}}]}}  # fmt: skip
    key = ObjectKey("apps", "Deployment", "shop", "web")
    drift = Drift(deleted=False, writer=who_changed(live))
    change = Change(key, "apps/v1", Action.CONFIGURED, Reason.DRIFTED, drift=drift)
    texts = delivered(from_result(ReconcileResult("apps", "a" * 40, (change,))))
    assert len(texts) == 1 and "&lt;!channel&gt;" in texts[0]
    assert not any(m in texts[0] for m in MARKUP)


def test_a_capability_and_an_owner_name_in_a_live_scan_notice_are_escaped() -> None:
    owner = {"apiVersion": "example.com/v1", "kind": "Thing", "name": HOSTILE, "controller": True, "uid": "u"}
    container = {"name": "c", "image": "i", "securityContext": {"capabilities": {"add": [HOSTILE]}}}
    metadata = {"name": "p", "namespace": "shop", "ownerReferences": [owner]}
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": metadata,
            "spec": {"containers": [container]}}  # fmt: skip
    pod = view(body)
    assert pod is not None
    path, message, fix = next(iter(capabilities_baseline(pod)))
    finding = Finding("caps", "GG1104", "Capabilities", "baseline", Severity.HIGH, message, path, fix, True)
    policy = type("P", (), {"live": LiveAction.DELETE, "grace": timedelta(0)})()
    standing = Standing(owner_kind="Thing", owner_name=HOSTILE)  # the owner as the scan verified it
    verdict = judge(body, (finding,), {"caps": policy}, None, datetime.now(UTC), standing)
    assert verdict.outcome is Outcome.HELD and HOSTILE in verdict.reason
    key = ObjectKey("", "Pod", "shop", "p")
    texts = delivered(from_announcements([Announcement("violation", key, body, verdict, verdict.reason)]))
    assert len(texts) == 1 and texts[0].count("&lt;!channel&gt;") == 2
    assert not any(m in texts[0] for m in MARKUP)


def test_any_text_in_any_field_reaches_slack_without_a_control_sequence() -> None:
    """The general rule: whatever a notice's values hold, no ``<`` or ``>`` reaches Slack, and the text
    Slack shows (entities decoded) is the value as given."""
    fake = FakeSlack()
    with fake.serving() as url:
        slack = SlackNotifier(SlackSettings(token=TOKEN, channel="#ops", base_url=f"{url}/api/", min_interval=0))
        seen = [0]

        @given(st.text(max_size=200), st.sampled_from(["subject", "what", "why", "action", "event"]))
        @example(HOSTILE, "why")
        @example("&lt;!channel&gt;", "what")  # already-escaped text must not turn back into markup
        @example("<<!channel>>", "subject")
        @example("grant-denied", "event")
        def check(text: str, field: str) -> None:
            values = {"event": "deleted", "subject": "s", "what": "w", "why": "y", "action": "a"} | {field: text}
            seen[0] += 1
            slack.notify([Notice(**values, namespace="", key=f"k{seen[0]}")])
            slack.drain()
            received = fake.texts()[-1]
            assert "<" not in received and ">" not in received
            shown = TITLES.get(text, text) if field == "event" else text  # an event is shown by its title
            assert shown in html.unescape(received)

        check()


@given(st.text())
@example("&amp;<!here>")
def test_escaping_leaves_no_angle_bracket_and_is_reversible(text: str) -> None:
    escaped = escape(text)
    assert "<" not in escaped and ">" not in escaped
    expected = text if len(text) <= FIELD_LIMIT else text[:FIELD_LIMIT] + "…"
    assert html.unescape(escaped) == expected
