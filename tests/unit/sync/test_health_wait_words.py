"""sync/wait.py's pure parts: a Unit's CEL checks compiled (an invalid one refused naming the file, the Unit and
the field), what a pass's health is of, and the words of a wait that did not end healthy."""

from __future__ import annotations

from datetime import timedelta
from typing import cast

import pytest

from gitopsguard.cluster.apply import Applier
from gitopsguard.errors import HealthCheckError, UnitError
from gitopsguard.model import Action, Change, Failure, ObjectKey, Reason
from gitopsguard.plan.health import Health, State
from gitopsguard.sync.wait import MAX_NAMED, Ending, ObjectHealth, Waited, compile_checks, wait_for_unit, waited_for
from gitopsguard.units.identity import UnitRef
from gitopsguard.units.spec import CelCheck, UnitSpec, WaitSpec

WEB = ObjectKey("apps", "Deployment", "shop", "web")


def unit(*expressions: str) -> UnitSpec:
    checks = tuple(CelCheck("cert-manager.io/v1", "Certificate", e) for e in expressions)
    return UnitSpec(ref=UnitRef("shop", "app"), origin="clusters/prod/units.yaml:12", path="apps/shop",
                    interval=timedelta(minutes=5), wait=WaitSpec(True, checks))  # fmt: skip


def test_a_units_checks_compile_in_order_named_after_its_file_and_field() -> None:
    checks = compile_checks(unit("true", "self.status.ready == true"))
    assert [c.where for c in checks] == ["clusters/prod/units.yaml:12: Unit/shop/app: spec.wait.cel[0]",
                                         "clusters/prod/units.yaml:12: Unit/shop/app: spec.wait.cel[1]"]  # fmt: skip
    assert (checks[1].group, checks[1].kind, checks[1].predicate.source) == (
        "cert-manager.io",
        "Certificate",
        "self.status.ready == true",
    )


@pytest.mark.parametrize("expression", ["self.status.(", "object.status.ready", "self.x > 'a' + 1"])
def test_a_check_that_is_not_valid_cel_is_refused_naming_the_file_the_unit_and_the_field(expression: str) -> None:
    with pytest.raises(HealthCheckError) as raised:
        compile_checks(unit("true", expression))
    message = str(raised.value)
    assert message.startswith("clusters/prod/units.yaml:12: Unit/shop/app: spec.wait.cel[1].expression: not valid CEL")
    assert message.endswith("fix the expression")
    assert isinstance(raised.value, UnitError) and not raised.value.retryable


def test_health_is_of_what_the_pass_left_as_git_says_once_each() -> None:
    config = ObjectKey("", "ConfigMap", "shop", "c")
    gone, refused = ObjectKey("", "ConfigMap", "shop", "old"), ObjectKey("apps", "Deployment", "shop", "bad")
    changes = [
        Change(WEB, "apps/v1", Action.CONFIGURED, Reason.APPLIED),
        Change(config, "v1", Action.UNCHANGED, Reason.IN_SYNC),
        Change(WEB, "apps/v1", Action.UNCHANGED, Reason.IN_SYNC),
        Change(gone, "v1", Action.DELETED, Reason.PRUNED),
        Change(refused, "apps/v1", Action.FAILED, Reason.APPLY_REFUSED, error=Failure("InvalidError", "no")),
        Change(ObjectKey("", "ConfigMap", "shop", "r"), "v1", Action.SKIPPED, Reason.REPORT_ONLY,
               would=Action.CREATED),
    ]  # fmt: skip
    assert waited_for(changes) == ((WEB, "apps/v1"), (config, "v1"))


def _object(name: str, state: State, reason: str) -> ObjectHealth:
    return ObjectHealth(ObjectKey("apps", "Deployment", "shop", name), "apps/v1", Health(state, reason))


def test_a_timed_out_wait_names_each_object_not_healthy_and_why() -> None:
    slow = _object("web", State.IN_PROGRESS, "0 of 2 replicas available: no")
    waited = Waited(Ending.TIMED_OUT, (_object("db", State.CURRENT, "fine"), slow), 30.2)
    assert not waited.healthy
    assert waited.message == "1 of 2 objects not healthy after 30s: Deployment/shop/web: 0 of 2 replicas available: no"


def test_a_failed_object_is_named_first() -> None:
    waited = Waited(Ending.FAILED, (_object("a", State.IN_PROGRESS, "slow"), _object("b", State.FAILED, "deadline")), 3)
    assert waited.message == "2 of 2 objects failed: Deployment/shop/b: deadline; Deployment/shop/a: slow"


def test_many_objects_not_healthy_are_counted_past_the_first_few() -> None:
    objects = tuple(_object(f"w{i:03d}", State.UNKNOWN, "odd") for i in range(200))
    message = Waited(Ending.TIMED_OUT, objects, 60).message
    assert message.count("Deployment/shop/") == MAX_NAMED
    assert message.endswith(f"; and {200 - MAX_NAMED} more") and len(message) < 1000


def test_a_healthy_wait_has_no_message() -> None:
    assert Waited(Ending.HEALTHY, (_object("a", State.CURRENT, "ok"),), 1).message == ""


def test_a_unit_that_does_not_ask_to_wait_reads_nothing() -> None:
    quiet = UnitSpec(ref=UnitRef("shop", "app"), origin="u.yaml:1", path="apps", interval=timedelta(minutes=5))
    nothing = cast(Applier, object())  # any read would raise AttributeError
    assert wait_for_unit(quiet, [Change(WEB, "apps/v1", Action.CREATED, Reason.APPLIED)], nothing, 0.0) is None


def test_a_unit_whose_check_does_not_compile_is_refused_before_anything_is_read() -> None:
    nothing = cast(Applier, object())
    with pytest.raises(HealthCheckError, match=r"spec\.wait\.cel\[0\]\.expression: not valid CEL"):
        wait_for_unit(unit("self.("), [Change(WEB, "apps/v1", Action.CREATED, Reason.APPLIED)], nothing, 0.0)
