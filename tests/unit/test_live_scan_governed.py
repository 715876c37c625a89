"""What the Units loop tells the live scan about each Unit's own policies (``scan/governed.py``): the policies
of the revision a Unit last applied govern its target namespace; a refused pass or one at rest changes nothing;
a Unit the root no longer declares governs nothing (issue 19)."""

from __future__ import annotations

from gitopsguard.policy import PolicySet, parse_policies
from gitopsguard.policy.compose import restricting
from gitopsguard.scan.governed import Governed

API = "apiVersion: gitopsguard.io/v1alpha1\nkind: Policy\n"
ROOT = parse_policies({"policies/p.yaml": API + "metadata: {name: p}\nspec:\n  builtin: {name: magtape}\n"})


def _team(name: str) -> PolicySet:
    own = parse_policies(
        {"t/policies/q.yaml": API + f"metadata: {{name: {name}}}\nspec:\n  builtin: {{name: magtape}}\n"}
    )
    return restricting(ROOT, own, unit="t.app")


def _names(governed: Governed, namespace: str) -> list[str]:
    found = governed.governance(ROOT)
    assert found is not None
    return [p.name for p in found.for_namespace(namespace).policies]


def test_a_units_applied_policies_govern_its_namespace_and_a_refused_or_resting_pass_changes_nothing() -> None:
    governed = Governed()
    assert governed.wants("t.app") and governed.governance(None) is None
    governed.passed("t.app", "team", _team("q"), failed=False)
    assert not governed.wants("t.app")
    assert _names(governed, "team") == ["p", "t.app/q"] and _names(governed, "elsewhere") == ["p"]
    governed.passed("t.app", "team", None, failed=True)  # a refused revision: the last applied one stays
    governed.passed("t.app", "team", None, failed=False)  # at rest
    assert _names(governed, "team") == ["p", "t.app/q"]
    governed.passed("t.app", "team", _team("r"), failed=False)
    assert _names(governed, "team") == ["p", "t.app/r"]


def test_the_answer_is_the_same_object_until_something_changes() -> None:
    governed = Governed()
    governed.passed("t.app", "team", _team("q"), failed=False)
    first = governed.governance(ROOT)
    governed.passed("t.app", "team", _team("q"), failed=False)  # the same files, loaded again
    assert governed.governance(ROOT) is first
    governed.passed("t.app", "moved", _team("q"), failed=False)  # its targetNamespace changed
    assert governed.governance(ROOT) is not first and _names(governed, "moved") == ["p", "t.app/q"]


def test_a_unit_the_root_no_longer_declares_governs_nothing() -> None:
    governed = Governed()
    governed.passed("t.app", "team", _team("q"), failed=False)
    governed.keep_only(["other.unit"])
    assert _names(governed, "team") == ["p"] and governed.wants("t.app")
