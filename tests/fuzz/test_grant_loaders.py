"""Fuzzing the loaders of grants, escalation policies and the trust file with hostile documents: odd types,
Unicode, huge numbers, broken YAML. Each either loads or raises the project's typed error naming the file,
within the deadline; a bad grant file is denied alone and never stops the others."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from gitopsguard.errors import GitOpsGuardError, PolicyError
from gitopsguard.evidence.trust import load_trust
from gitopsguard.grants.load import load_escalation_policies, load_grants

GRANT: dict[str, Any] = {
    "apiVersion": "gitopsguard.io/v1alpha1", "kind": "Grant", "metadata": {"name": "alice-debug"},
    "spec": {"policy": "debug", "subject": {"kind": "User", "name": "alice"},
             "role": {"kind": "ClusterRole", "name": "view"}, "namespace": "shop", "duration": "1h",
             "reason": "INC-7"},
}  # fmt: skip
POLICY: dict[str, Any] = {
    "apiVersion": "gitopsguard.io/v1alpha1", "kind": "EscalationPolicy", "metadata": {"name": "debug"},
    "spec": {"requesters": {"groups": ["team-shop"]}, "approvers": {"users": ["bob"]}, "approvals": 1,
             "roles": [{"kind": "ClusterRole", "name": "view", "namespaces": ["shop"]}], "maxDuration": "2h",
             "reasonRequired": True},
}  # fmt: skip
TRUST: dict[str, Any] = {
    "administrators": ["carol"],
    "signers": [{"user": "alice", "groups": ["team-shop"], "keys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOfake"]},
                {"user": "carol", "github": "carol-gh"}],
}  # fmt: skip

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=10**18), st.floats(allow_nan=True),
    st.text(max_size=40), st.sampled_from(["99999999999d", "1h", "0s", "-5m", "1e9d", "\u0661h", "2026-01-01", "~"]),
)  # fmt: skip
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def _paths(document: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path in a nested document, to pick one to replace."""
    found = [prefix] if prefix else []
    if isinstance(document, dict):
        for key, value in document.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            found += _paths(value, (*prefix, index))
    return found


@st.composite
def mutated(draw: st.DrawFn, base: dict[str, Any]) -> str:
    """The base document with a few of its values replaced by hostile ones, as YAML text (or raw garbage)."""
    document = yaml.safe_load(yaml.safe_dump(base))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(document) or [("spec",)]))
        holder = document
        for key in path[:-1]:
            holder = holder[key] if isinstance(holder, dict | list) else holder
        if isinstance(holder, dict | list):
            holder[path[-1]] = draw(values)
    text = yaml.safe_dump(document, allow_unicode=True)
    return draw(st.sampled_from([text, text[: draw(st.integers(0, len(text)))], text + draw(st.text(max_size=30))]))


@contextmanager
def _in(folder: str, name: str, text: str) -> Iterator[Path]:
    """A temporary root holding ``text`` as ``folder/name``, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="fuzz-grants-") as temporary:
        root = Path(temporary)
        (root / folder).mkdir(parents=True)
        (root / folder / name).write_text(text, encoding="utf-8", errors="surrogatepass")
        yield root


@given(mutated(GRANT))
@example("spec:\n  subject: alice\n")  # a subject given as a string stopped every grant (issue #15)
@example(yaml.safe_dump({**GRANT, "spec": {**GRANT["spec"], "duration": "99999999999d"}}))  # OverflowError
@example("a: &a [*a]\n")  # a recursive alias
@example("[" * 5000 + "]" * 5000)  # deeper than the parser's recursion
@example("- " * 5000 + "x")  # deep block nesting in a few kilobytes
def test_a_hostile_grant_file_is_loaded_or_denied_alone_naming_its_file(text: str) -> None:
    with _in("access/grants", "odd.yaml", text) as root:
        (root / "access/grants/z-good.yaml").write_text(yaml.safe_dump(GRANT))
        grants, broken = load_grants(root, lambda path: "0" * 40)
    assert [g.path for g in grants].count("access/grants/z-good.yaml") == 1
    for where, why in broken:
        assert where.startswith("access/grants/odd.yaml") and why.startswith(where), (where, why)


@given(mutated(POLICY))
@example(yaml.safe_dump({**POLICY, "spec": {**POLICY["spec"], "maxDuration": "99999999999d"}}))
@example("metadata: debug\n")
def test_a_hostile_escalation_policy_loads_or_is_a_policy_error_naming_its_file(text: str) -> None:
    try:
        with _in("access/policies", "odd.yaml", text) as root:
            load_escalation_policies(root)
    except PolicyError as error:
        assert str(error).startswith("access/policies/odd.yaml"), str(error)


@given(mutated(TRUST))
@example("signers: alice\n")
@example("- a\n- b\n")
@example("signers: [{user: 'alice,bob', keys: ['ssh-ed25519 AAAA']}]\n")
def test_a_hostile_trust_file_loads_or_is_a_typed_error_naming_the_file(text: str) -> None:
    with _in("etc", "trust.yaml", text) as root:
        try:
            signers = load_trust(root / "etc/trust.yaml")
        except GitOpsGuardError as error:
            assert str(error).startswith(str(root / "etc/trust.yaml")), str(error)
            return
    assert all(s.identity.user and "," not in s.identity.user for s in signers)
