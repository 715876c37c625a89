"""Red team, issue 19 (par19 with shards): a dependency's Ready counts for its dependents only at the round's
commit. Its generation does not change when only its folder does, so a Ready written for the last commit (by
another replica, which has not served the new one yet) must not let a dependent apply the new commit first.
The integration test is ``tests/integration/redteam_today/test_a_dependent_waits_for_its_dependency_on_another_
replica.py``."""

from __future__ import annotations

from gitopsguard.units import UnitRef, readiness_of
from gitopsguard.units.order import blocked
from gitopsguard.units.spec import DEFAULTS, UnitSpec

OLD, NEW = "a" * 40, "b" * 40
READY = {"type": "Ready", "status": "True", "reason": "Succeeded", "message": "Applied"}
READY_AT_OLD = {"observedGeneration": 1, "lastAppliedRevision": OLD, "conditions": [READY]}


def test_a_dependency_ready_at_the_last_commit_is_not_ready_at_a_new_one() -> None:
    state = readiness_of(READY_AT_OLD, 1, NEW)
    assert not state.ready and state.reason == "Progressing" and NEW[:12] in state.message


def test_a_dependency_ready_at_the_rounds_commit_is_ready() -> None:
    assert readiness_of(READY_AT_OLD, 1, OLD).ready
    assert readiness_of(READY_AT_OLD, 1).ready, "without a commit (nothing fetched yet) as before"


def test_a_dependent_waits_for_a_dependency_ready_only_at_the_last_commit() -> None:
    infra, apps = UnitRef("team", "infra"), UnitRef("team", "apps")
    dependent = UnitSpec(apps, "root/units.yaml:1", "apps", DEFAULTS.interval, depends_on=(infra,))
    waiting = blocked([dependent], {infra: readiness_of(READY_AT_OLD, 1, NEW)})
    assert waiting == {apps: f"waiting for {infra}: not Ready: Progressing: it has not applied {NEW[:12]} yet"}


def test_a_suspended_dependency_ready_at_the_last_commit_still_lets_its_dependents_go() -> None:
    suspended = {**READY, "reason": "Suspended"}
    assert readiness_of({**READY_AT_OLD, "conditions": [suspended]}, 1, NEW).ready
