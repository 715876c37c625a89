"""units/identity.py: a Unit's id is a label value and a name part, stable, and no Unit can take another's."""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from gitopsguard.commands.reconcile_once import unit_name_for
from gitopsguard.errors import SourceError, UnitError
from gitopsguard.units import unit_id

LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
labels = st.from_regex(r"\A[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?\Z")
namespaces = st.from_regex(r"\A[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\Z")
names = st.lists(labels, min_size=1, max_size=12).map(".".join).filter(lambda n: len(n) <= 253)


def test_a_short_unit_keeps_its_readable_id() -> None:
    assert unit_id("platform", "infra") == "platform.infra"


def test_a_long_unit_gets_a_hashed_id_within_63_characters() -> None:
    long_id = unit_id("team-" + "a" * 50, "app." + "b" * 200)
    assert len(long_id) <= 63 and "--" in long_id and "." not in long_id
    assert long_id == unit_id("team-" + "a" * 50, "app." + "b" * 200)  # stable: the same every run


@given(namespaces, names)
@example("a" * 63, "b")  # the longest namespace: the readable form is 65 characters
@example("a", "b" * 61)  # exactly 63: readable
def test_every_id_is_a_label_value_and_a_name_part(namespace: str, name: str) -> None:
    found = unit_id(namespace, name)
    assert len(found) <= 63 and LABEL_VALUE.fullmatch(found), found
    assert DNS_SUBDOMAIN.fullmatch(f"gitopsguard-inventory-{found}"), found  # ConfigMap and Lease names hold it


@given(namespaces, names, namespaces, names)
@example("a", "b.c", "a-b", "c")  # "a.b.c" vs "a-b.c": a dot moved across the namespace boundary
def test_two_units_never_share_an_id(ns1: str, n1: str, ns2: str, n2: str) -> None:
    if (ns1, n1) != (ns2, n2):
        assert unit_id(ns1, n1) != unit_id(ns2, n2)


@given(namespaces, names)
@example("a" * 63, "b")
def test_a_readable_id_always_holds_a_dot_and_a_hashed_one_never_so_no_name_can_be_chosen_to_meet_one(
    namespace: str, name: str
) -> None:
    """The attacker picks a Unit name so that its id equals another Unit's hashed id: the forms cannot meet."""
    found = unit_id(namespace, name)
    if found == f"{namespace}.{name}":
        assert found.index(".") == len(namespace)  # the first dot ends the namespace: namespace and name recovered
    else:
        assert "." not in found and "--" in found


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789/-_. ", min_size=1, max_size=120))
def test_no_path_derived_unit_name_equals_a_hashed_unit_id(path: str) -> None:
    try:
        derived = unit_name_for(path)
    except SourceError:  # a path that names no unit: nothing to compare
        return
    assert "--" not in derived and "." not in derived  # the hashed form always holds "--", the readable a "."


@pytest.mark.parametrize(
    ("namespace", "name"),
    [("Team", "app"), ("team", "App"), ("te_am", "app"), ("team", "a/b"), ("", "app"), ("team", ""),
     ("team", "app\n"), ("tëam", "app"), ("team", "٣"), ("a" * 64, "b"), ("team", "a" * 254), ("team", "a..b")],
)  # fmt: skip
def test_a_namespace_or_name_the_api_server_would_refuse_is_refused(namespace: str, name: str) -> None:
    with pytest.raises(UnitError, match=r"^Unit/"):
        unit_id(namespace, name)
