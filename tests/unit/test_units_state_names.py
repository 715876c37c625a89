"""Live-scan state names per unit: two (unit, namespace) pairs never share a ConfigMap, every name is one the
API server takes, and a unit id that could reach another name or selector is refused."""

from __future__ import annotations

import re

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from gitopsguard.scan.state import state_name

# what the API server takes as a ConfigMap's name (IsDNS1123Subdomain: dot-separated DNS labels)
SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
units = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,8}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,8}[a-z0-9])?){0,2}", fullmatch=True)
namespaces = st.one_of(st.from_regex(r"[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?", fullmatch=True), st.text(max_size=70))


@given(st.one_of(st.just(""), units), namespaces, st.one_of(st.just(""), units), namespaces)
@example("a.b", "c", "a", "b-c")
@example("", "a-b", "a", "b")  # the scan of no unit's "gitopsguard-live-scan-a-b" against unit a's
@example("a", "b", "", "a.b")
@example("", "", "", "ß")  # lower-case and alphanumeric to Python: it went into the name as it was
@example("a", "-b", "a", "b")  # "-b" is no DNS label: hashed, never ".-b" in a name
def test_two_units_or_namespaces_never_share_a_state_configmap(unit: str, ns: str, other: str, other_ns: str) -> None:
    first, second = state_name(ns, unit), state_name(other_ns, other)
    for name in (first, second):
        assert len(name) <= 253 and SUBDOMAIN.fullmatch(name), name
    # a namespace named like another's hashed form ("x" and 32 hex digits) is the one sharing left, as before
    assume(not any(re.fullmatch(r"x[0-9a-f]{32}", n) for n in (ns, other_ns)))
    if (unit, ns) != (other, other_ns):
        assert first != second


@pytest.mark.parametrize("unit", ["A", "a,b", "a=b", "a/b", "a..b", "-a", "a.-b", "a" * 64, "a\nb", "a b", "!a"])
def test_a_unit_name_that_is_not_a_label_value_is_kept_under_a_stable_hash(unit: str) -> None:
    """A name that could reach another ConfigMap name or another label selector never goes in as it is."""
    name = state_name("ns", unit)
    assert re.fullmatch(r"gitopsguard-live-scan\.u[0-9a-f]{32}\.ns", name)
    assert name == state_name("ns", unit) != state_name("ns", unit + "x")
    assert SUBDOMAIN.fullmatch(name)
