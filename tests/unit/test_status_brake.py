"""`gitopsguard status` tells a unit whose deletions the mass-prune brake holds from a failing one by the
inventory's own field (``Inventory.brake``), never by the words of its last error: a contributor names the
file, and the file's name begins the error."""

from __future__ import annotations

from gitopsguard.cluster.inventory import Inventory
from gitopsguard.commands.status import describe, unit_state


def test_a_failure_whose_message_begins_like_the_brake_is_shown_failing() -> None:
    """A contributor without approval rights commits a broken `mass-prune brake: allowed.yaml`: the unit fails,
    and status must not show it ready."""
    failed = Inventory(last_error="mass-prune brake: allowed.yaml:1: not valid YAML: expected a mapping")
    assert unit_state(failed) == "FAILING"


def test_a_unit_held_by_the_brake_is_ready_and_says_what_is_held() -> None:
    held = Inventory(last_applied="abc", brake="would delete 3 of 4 owned objects (75%)")
    state = unit_state(held)
    assert state == "ready, deletions held by the mass-prune brake"
    assert "deletions held: mass-prune brake: would delete 3 of 4 owned objects" in describe("apps", held, state)


def test_a_failure_while_the_brake_holds_is_shown_failing_with_both() -> None:
    both = Inventory(last_error="apps/c.yaml:3: not valid YAML", brake="would delete 3 of 4 owned objects")
    state = unit_state(both)
    assert state == "FAILING"
    shown = describe("apps", both, state)
    assert "apps/c.yaml:3" in shown and "deletions held: mass-prune brake" in shown
