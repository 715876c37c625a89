"""Which labelled bindings a keeper may sweep: its own (marked with its name), and unmarked ones under names
only it makes; never another keeper's, never one someone else labelled under another name, whatever the name,
mark or shape of the body."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from gitopsguard.errors import IdentityError
from gitopsguard.grants.bindings import keeper_id, sweepable
from gitopsguard.grants.model import DEFAULT_KEEPER, GRANT_LABEL, KEEPER_LABEL

KEEPERS = st.sampled_from([DEFAULT_KEEPER, "team-b-grants", "x"])
anything = st.one_of(st.none(), st.integers(), st.text(max_size=30), st.lists(st.text(max_size=5), max_size=2))


def body(name: object, mark: object = None, *, marked: bool = True) -> dict[str, object]:
    labels: dict[str, object] = {GRANT_LABEL: "abc"}
    if marked:
        labels[KEEPER_LABEL] = mark
    return {"kind": "RoleBinding", "metadata": {"name": name, "labels": labels}}


@given(KEEPERS, KEEPERS, st.text(max_size=60))
@example(DEFAULT_KEEPER, "team-b-grants", "gitopsguard-grant-alice-debug-1234abcd")
@example("team-b-grants", DEFAULT_KEEPER, "team-b-grants.alice-1234abcd")
def test_a_binding_another_keeper_marked_is_never_swept_whatever_its_name(me: str, other: str, name: str) -> None:
    if me != other:
        assert not sweepable(body(name, other), me)
    assert sweepable(body(name, me), me)


@given(KEEPERS, st.text(max_size=60))
@example(DEFAULT_KEEPER, "oncall-by-hand")
@example("team-b-grants", "gitopsguard-grant-alice-1234abcd")
def test_an_unmarked_binding_is_swept_only_under_a_name_this_keeper_makes(me: str, name: str) -> None:
    ours = name.startswith("gitopsguard-grant-" if me == DEFAULT_KEEPER else f"{me}.")
    assert sweepable(body(name, marked=False), me) is ours


@given(KEEPERS, anything, anything)
def test_odd_bodies_are_judged_without_raising(me: str, name: object, mark: object) -> None:
    sweepable(body(name, mark), me)
    sweepable({"metadata": name}, me)
    sweepable({"metadata": {"labels": mark}}, me)


def test_no_two_keepers_make_the_same_binding_name() -> None:
    """A keeper name that could give the cluster keeper's binding names is refused, so two keepers never fight
    over one binding (each replacing the other's as 'not exactly the grant's')."""
    for refused in ("gitopsguard-grant", "gitopsguard-grant-x", "Team", "a.b", "", "a" * 64):
        with pytest.raises(IdentityError, match="is not a keeper name"):
            keeper_id(refused, "--grants-keeper")
    assert keeper_id("team-b-grants", "--grants-keeper") == "team-b-grants"
