"""A reconcile request is answered only by a round that fetched after seeing it.

``gitopsguard reconcile unit`` sets ``reconcile.gitopsguard.io/requestedAt`` and waits for the controller to
copy it into ``status.lastHandledReconcileAt``; the controller fetches the branch for a request it has not
seen, so a commit pushed just before is applied. A request that landed while a round was already past its
fetch (the round lists the Units again after the root's pass, and re-reads a Unit whose status write
conflicted) was copied all the same, so the command reported the old revision as served:
``tests/integration/test_units_loop.py::test_reconcile_unit_is_served_by_the_running_controller`` failed 4
times in 5 on this machine. Such a round now answers only the request it saw before it fetched
(``fleet_status.answering``); the later one stays for the next round."""

from __future__ import annotations

from typing import Any

from gitopsguard.cluster.units import REQUESTED_AT, LiveUnit
from gitopsguard.fleet_status import answering


def unit(annotations: dict[str, str] | None, **status: Any) -> LiveUnit:
    metadata: dict[str, Any] = {"name": "apps", "namespace": "team-a", "generation": 1, "resourceVersion": "7"}
    if annotations is not None:
        metadata["annotations"] = annotations
    return LiveUnit.of({"apiVersion": "gitopsguard.io/v1alpha1", "kind": "Unit", "metadata": metadata,
                        "spec": {"path": "teams/a"}, "status": status})  # fmt: skip


def test_a_request_that_came_after_the_fetch_is_not_the_rounds_to_answer() -> None:
    later = unit({REQUESTED_AT: "later", "team": "kept"}, lastHandledReconcileAt="earlier")
    seen = answering(later, "earlier")
    assert seen.requested_at == "earlier"
    assert seen.body["metadata"]["annotations"] == {REQUESTED_AT: "earlier", "team": "kept"}
    assert seen.status == later.status and seen.resource_version == "7"
    assert later.requested_at == "later", "the object as read is left as it is"


def test_a_request_the_round_never_saw_is_left_for_the_next_round() -> None:
    assert answering(unit({REQUESTED_AT: "new"}), None).requested_at is None
    assert answering(unit(None), None).requested_at is None


def test_the_request_the_round_saw_is_answered() -> None:
    asked = unit({REQUESTED_AT: "now"})
    assert answering(asked, "now") is asked
