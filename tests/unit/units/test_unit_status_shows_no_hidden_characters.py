"""A Unit's status holds no character that a terminal would act on. Its messages carry a tenant's text (a file
name, a line of a broken YAML document, a server's answer quoting an object), and `kubectl get units` prints the
Ready message in a column as it is: an escape sequence there could rewrite the operator's screen, set their
clipboard (OSC 52) or hide the rest of the line, and a bidi control could reorder what they read. Every control,
format, separator and surrogate character is written as an escape; `lastError` keeps its newlines and tabs."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from gitopsguard.units import Phase, status_of
from gitopsguard.units.conditions import PassOutcome

NOW = datetime(2026, 12, 6, tzinfo=UTC)
HIDDEN = {"Cc", "Cf", "Cs", "Zl", "Zp"}


def hidden(text: str, allowed: str = "") -> list[str]:
    return [c for c in text if unicodedata.category(c) in HIDDEN and c not in allowed]


def messages(status: dict[str, Any]) -> list[str]:
    return [str(c.get("message", "")) for c in status["conditions"]]


def test_an_escape_sequence_in_a_failure_reaches_no_condition_and_no_error_as_it_is() -> None:
    attack = "apps/\x1b]52;c;Y3VybCBldmlsIHwgc2g=\x07evil.yaml: bad\x1b[2K\r\u202eok\x00"
    status = status_of(PassOutcome(Phase.FAILED, 1, "abc", message=f"{attack}\nline two\tend"), None, NOW)
    for message in messages(status):
        assert hidden(message) == [], message
    assert hidden(status["lastError"], allowed="\n\t") == []
    assert "\\x1b]52;c;" in status["lastError"] and "\\u202e" in status["lastError"]
    assert status["lastError"].splitlines()[1] == "line two\tend"  # the rest of the error is kept readable


def test_a_waiting_message_and_the_request_it_served_are_escaped_too() -> None:
    status = status_of(PassOutcome(Phase.WAITING, 1, message="waits for \x1b[31mteam-b\x1b[0m", handled="\x1b[8m"),
                       None, NOW)  # fmt: skip
    assert all(hidden(m) == [] for m in messages(status))
    assert hidden(status["lastHandledReconcileAt"]) == []


def test_text_without_hidden_characters_is_kept_as_written() -> None:
    path = r"C:\repo\apps\a.yaml: line 3: did not find expected key — ünïcode"
    status = status_of(PassOutcome(Phase.FAILED, 1, "abc", message=path), None, NOW)
    assert status["lastError"] == path
    assert path in messages(status)


@given(st.text(max_size=400), st.sampled_from([Phase.FAILED, Phase.UNHEALTHY, Phase.WAITING, Phase.SUCCEEDED]))
def test_no_status_message_holds_a_hidden_character_whatever_the_text(text: str, phase: Phase) -> None:
    status = status_of(PassOutcome(phase, 1, "abc", message=text, handled=text or None), None, NOW)
    assert all(hidden(m) == [] for m in messages(status))
    assert hidden(str(status.get("lastError") or ""), allowed="\n\t") == []
    assert hidden(str(status.get("lastHandledReconcileAt") or "")) == []
