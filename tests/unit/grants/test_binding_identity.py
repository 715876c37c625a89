"""Which live binding counts as an active grant's own: exactly the one it makes, field for field where
anything is granted (kind, namespace, name, grant label, roleRef, subjects); the expiry annotation aside."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from gitopsguard.grants.bindings import binding_body, matches
from gitopsguard.grants.model import Grant

GRANT = Grant("alice-debug", "access/grants/alice.yaml", "access/grants/alice.yaml:1", "debug", "User", "alice",
              "ClusterRole", "view", "shop", timedelta(hours=1), "INC-7", "0123456789abcdef" * 2)  # fmt: skip
EXPIRES = datetime(2026, 11, 24, 11, tzinfo=UTC)
# Where a forger can change what a binding grants, and to what.
PLACES: list[tuple[tuple[str | int, ...], Any]] = [
    (("kind",), "ClusterRoleBinding"), (("metadata", "namespace"), "default"), (("metadata", "name"), "other"),
    (("metadata", "labels", "gitopsguard.io/grant"), "forged"), (("roleRef", "name"), "cluster-admin"),
    (("roleRef", "kind"), "Role"), (("roleRef", "apiGroup"), ""), (("subjects", 0, "name"), "mallory"),
    (("subjects", 0, "kind"), "Group"), (("subjects", 0, "namespace"), "kube-system"),
]  # fmt: skip


def changed(path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    body = copy.deepcopy(binding_body(GRANT, EXPIRES))
    node: Any = body
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return body


def test_the_binding_a_grant_makes_matches_it_whatever_its_expiry_annotation_says() -> None:
    assert matches(binding_body(GRANT, EXPIRES), GRANT)
    assert matches(binding_body(GRANT, EXPIRES + timedelta(days=9)), GRANT)


@given(st.sampled_from(PLACES), st.text(min_size=1, max_size=20) | st.integers())
@example(PLACES[4], "cluster-admin")
@example(PLACES[0], "ClusterRoleBinding")
def test_a_binding_differing_anywhere_it_grants_something_does_not_match(place: Any, value: Any) -> None:
    path, forged = place
    for replacement in (forged, value):
        body = changed(path, replacement)
        assert matches(body, GRANT) == (body == binding_body(GRANT, EXPIRES))


@given(st.lists(st.fixed_dictionaries({"kind": st.sampled_from(["User", "Group", "ServiceAccount"]),
                                       "name": st.sampled_from(["alice", "mallory", "system:masters"])}),
                min_size=1, max_size=3))  # fmt: skip
def test_an_added_or_replaced_subject_does_not_match(extra: list[dict[str, str]]) -> None:
    body = binding_body(GRANT, EXPIRES)
    body["subjects"] = body["subjects"] + [dict(s, apiGroup="rbac.authorization.k8s.io") for s in extra]
    assert not matches(body, GRANT)


@given(st.one_of(st.none(), st.text(max_size=5), st.integers(), st.lists(st.none(), max_size=2)))
def test_odd_shapes_never_match_and_never_raise(odd: Any) -> None:
    for key in ("metadata", "roleRef", "subjects"):
        body = binding_body(GRANT, EXPIRES)
        body[key] = odd
        assert not matches(body, GRANT)
