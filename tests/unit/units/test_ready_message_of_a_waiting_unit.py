"""``units.ready_message``: the Ready condition's message, or the whole error (``status.lastError``) where the
condition holds that error's summary. Who would break it: a Unit that failed once, then waits for a dependency
that fails. Its Waiting message quotes the dependency's summary (ending in "the whole error: status.lastError"),
and its own lastError is kept from its old failure: `gitopsguard reconcile unit` must print what it waits for,
not the old error of a pass that is over."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import example, given
from hypothesis import strategies as st

from gitopsguard.units import PassOutcome, Phase, UnitRef, readiness_of, ready_message, status_of
from gitopsguard.units.order import blocked
from gitopsguard.units.spec import UnitSpec

NOW = datetime(2026, 12, 6, tzinfo=UTC)
DATABASE, WEB = UnitRef("shop", "database"), UnitRef("shop", "web")


def test_a_waiting_unit_that_failed_before_reads_as_waiting_not_as_its_old_error() -> None:
    database = status_of(PassOutcome(Phase.FAILED, 1, message="database: render failed\nkustomize said: ..."),
                         None, NOW)  # fmt: skip
    web_failed = status_of(PassOutcome(Phase.FAILED, 1, message="web: apply failed\nthe server said: ..."), None, NOW)
    web = UnitSpec(WEB, "root/units.yaml:3", "apps/web", timedelta(minutes=1), depends_on=(DATABASE,))
    waiting = blocked([web], {DATABASE: readiness_of(database, 1)})[WEB]
    web_waiting = status_of(PassOutcome(Phase.WAITING, 1, message=waiting), web_failed, NOW)

    assert web_waiting["lastError"].startswith("web: apply failed")  # kept from the failed pass
    assert ready_message(web_waiting) == waiting
    assert "web: apply failed" not in ready_message(web_waiting)


def test_a_dependents_waiting_message_quotes_the_dependencys_line_without_pointing_at_a_field_of_its_own() -> None:
    database = status_of(PassOutcome(Phase.FAILED, 1, message="database: render failed\nkustomize said: ..."),
                         None, NOW)  # fmt: skip
    web = UnitSpec(WEB, "root/units.yaml:3", "apps/web", timedelta(minutes=1), depends_on=(DATABASE,))
    waiting = blocked([web], {DATABASE: readiness_of(database, 1)})[WEB]
    assert waiting == "waiting for Unit/shop/database: not Ready: ReconciliationFailed: database: render failed"


def test_a_failed_unit_reads_as_its_whole_error() -> None:
    error = "web: apply failed\nthe server said: Deployment/shop/web is invalid\n" + "x" * 300
    failed = status_of(PassOutcome(Phase.FAILED, 1, message=error), None, NOW)
    assert ready_message(failed) == error


@given(st.text(max_size=6000))
@example("abc" + " " * 5000 + "\nx")  # its first line is short, but cut at 4,096 in lastError it is not
@example("\x1b]0;title\x07\u2028second")
def test_any_failure_reads_as_its_whole_lasterror_and_its_condition_as_one_bounded_line(error: str) -> None:
    status = status_of(PassOutcome(Phase.FAILED, 1, message=error), None, NOW)
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert len(ready.get("message", "")) <= 200 + len(" (the whole error: status.lastError)")
    assert len(ready.get("message", "").splitlines()) <= 1
    assert ready_message(status) in (status["lastError"], ready.get("message", ""))
    if ready.get("message", "").endswith("(the whole error: status.lastError)"):
        assert ready_message(status) == status["lastError"]
