"""Reading grant and escalation policy files: a malformed grant file is denied alone, with its file and line,
and never stops the others; every fault is the project's typed error, never a crash of the reader."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import pytest

from gitopsguard.errors import PolicyError
from gitopsguard.grants.load import MAX_DURATION, load_escalation_policies, load_grants

GOOD = """\
apiVersion: gitopsguard.io/v1alpha1
kind: Grant
metadata: {name: alice-debug}
spec:
  policy: debug
  subject: {kind: User, name: alice}
  role: {kind: ClusterRole, name: view}
  namespace: shop
  duration: 1h
  reason: "INC-7"
"""

POLICY = """\
apiVersion: gitopsguard.io/v1alpha1
kind: EscalationPolicy
metadata: {name: debug}
spec:
  requesters: {groups: [team-shop]}
  approvers: {users: [bob]}
  roles:
    - {kind: ClusterRole, name: view, namespaces: [shop]}
  maxDuration: 2h
"""


def write(root: Path, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))


def read(root: Path) -> tuple[list[str], list[tuple[str, str]]]:
    grants, broken = load_grants(root, lambda path: "0" * 40)
    return [g.name for g in grants], broken


def test_a_grant_whose_subject_is_a_string_is_denied_alone_with_its_file_and_line(tmp_path: Path) -> None:
    write(tmp_path, "access/grants/good.yaml", GOOD)
    write(tmp_path, "access/grants/bad.yaml", GOOD.replace("{kind: User, name: alice}", "alice"))
    names, broken = read(tmp_path)
    assert names == ["alice-debug"]
    ((where, why),) = broken
    assert where == "access/grants/bad.yaml:6" and why.startswith(
        "access/grants/bad.yaml:6: `subject` must be a mapping"
    ), why


def test_a_grant_with_a_duration_too_large_for_any_clock_is_denied_alone(tmp_path: Path) -> None:
    write(tmp_path, "access/grants/good.yaml", GOOD)
    write(tmp_path, "access/grants/huge.yaml", GOOD.replace("duration: 1h", "duration: 99999999999d"))
    names, broken = read(tmp_path)
    assert names == ["alice-debug"]
    ((where, why),) = broken
    assert where == "access/grants/huge.yaml:9" and "longer than" in why, why


@pytest.mark.parametrize("text", ["1d", "30d", f"{MAX_DURATION.days}d"])
def test_durations_up_to_the_absolute_maximum_are_read(tmp_path: Path, text: str) -> None:
    write(tmp_path, "access/grants/g.yaml", GOOD.replace("duration: 1h", f"duration: {text}"))
    assert read(tmp_path) == (["alice-debug"], [])


@pytest.mark.parametrize("text", [f"{MAX_DURATION.days + 1}d", f"{int(MAX_DURATION.total_seconds()) + 1}s",
                                  "9" * 400 + "s", "0h", "-1h", "1.5h", "1 h 2m", "\u0661h", "true", "[1h]",
                                  "{a: 1}"])  # fmt: skip
def test_a_duration_that_is_not_a_positive_bounded_duration_is_refused_with_its_line(tmp_path: Path, text: str) -> None:
    write(tmp_path, "access/grants/g.yaml", GOOD.replace("duration: 1h", f"duration: {text}"))
    names, broken = read(tmp_path)
    assert names == [] and [where for where, _ in broken] == ["access/grants/g.yaml:9"], broken


# Every field of a grant given a value of the wrong type: each is denied alone, naming the file and line.
ODD_GRANTS = [
    ("metadata: {name: alice-debug}", "metadata: alice-debug"),
    ("metadata: {name: alice-debug}", "metadata: {name: [a, b]}"),
    ("metadata: {name: alice-debug}", "metadata: {name: {a: b}}"),
    ("spec:\n", "spec: [1]\nx:\n"),
    ("policy: debug", "policy: [debug]"),
    ("subject: {kind: User, name: alice}", "subject: [User, alice]"),
    ("subject: {kind: User, name: alice}", "subject: {kind: User, name: {a: b}}"),
    ("subject: {kind: User, name: alice}", "subject: {kind: [User], name: alice}"),
    ("role: {kind: ClusterRole, name: view}", "role: view"),
    ("role: {kind: ClusterRole, name: view}", "role: {kind: ClusterRole, name: 12}"),
    ("namespace: shop", "namespace: [shop, payments]"),
    ("namespace: shop", "namespace: 2026-01-01"),
    ('reason: "INC-7"', "reason: {why: INC-7}"),
    ("duration: 1h", "duration: 3600"),
    ("name: alice}", "name: " + "a" * 300 + "}"),
    ("name: alice}", 'name: "alice\\nbob"}'),
]


@pytest.mark.parametrize(("good", "odd"), ODD_GRANTS)
def test_a_grant_field_of_the_wrong_type_is_denied_alone_with_its_file(tmp_path: Path, good: str, odd: str) -> None:
    assert good in GOOD
    write(tmp_path, "access/grants/a-good.yaml", GOOD)
    write(tmp_path, "access/grants/odd.yaml", GOOD.replace(good, odd, 1))
    names, broken = read(tmp_path)
    assert names == ["alice-debug"], broken
    ((where, why),) = broken
    assert where.startswith("access/grants/odd.yaml:") and why.startswith(where), broken


ODD_POLICIES = [
    ("metadata: {name: debug}", "metadata: debug"),
    ("requesters: {groups: [team-shop]}", "requesters: {groups: team-shop}"),
    ("approvers: {users: [bob]}", "approvers: [bob]"),
    ("approvers: {users: [bob]}", "approvers: {users: [{a: b}]}"),
    ("roles:\n    - {kind: ClusterRole, name: view, namespaces: [shop]}", "roles: view"),
    ("namespaces: [shop]", "namespaces: shop"),
    ("maxDuration: 2h", "maxDuration: 99999999999d"),
    ("maxDuration: 2h", "maxDuration: [2h]"),
    ("maxDuration: 2h", "maxDuration: 2h\n  approvals: 99999999999999999999999"),
    ("maxDuration: 2h", "maxDuration: 2h\n  approvals: true"),
]


@pytest.mark.parametrize(("good", "odd"), ODD_POLICIES)
def test_an_escalation_policy_field_of_the_wrong_type_is_a_policy_error_naming_the_file(
    tmp_path: Path, good: str, odd: str
) -> None:
    assert good in POLICY
    write(tmp_path, "access/policies/debug.yaml", POLICY.replace(good, odd, 1))
    with pytest.raises(PolicyError, match=r"^access/policies/debug\.yaml:\d+: "):
        load_escalation_policies(tmp_path)


def test_a_well_formed_policy_still_loads(tmp_path: Path) -> None:
    write(tmp_path, "access/policies/debug.yaml", POLICY)
    (policy,) = load_escalation_policies(tmp_path).values()
    assert policy.name == "debug" and policy.approvers.users == {"bob"} and policy.requesters.groups == {"team-shop"}


def test_a_grant_file_too_large_to_be_a_grant_is_denied_alone_unread(tmp_path: Path) -> None:
    write(tmp_path, "access/grants/good.yaml", GOOD)
    write(tmp_path, "access/grants/big.yaml", GOOD + "#" * (1024 * 1024))
    names, broken = read(tmp_path)
    assert names == ["alice-debug"] and broken[0][0] == "access/grants/big.yaml", broken


@pytest.mark.parametrize("text", ["[" * 5000 + "]" * 5000, "- " * 5000 + "x\n", "a: &a [x, x]\nb: [*a, *a]\n"])
def test_a_grant_file_nested_deeply_or_with_aliases_is_denied_alone_at_once(tmp_path: Path, text: str) -> None:
    write(tmp_path, "access/grants/good.yaml", GOOD)
    (tmp_path / "access/grants/odd.yaml").write_text(text)
    started = time.monotonic()
    names, broken = read(tmp_path)
    assert time.monotonic() - started < 0.5  # the parser's deep recursion took seconds
    assert names == ["alice-debug"] and [where for where, _ in broken] == ["access/grants/odd.yaml"], broken


@pytest.mark.parametrize("name", ["a\nb.yaml", "activated\r.yaml", "x\x1b[31m.yaml", "y\u2028.yaml"])
def test_a_grant_file_whose_name_holds_control_characters_is_denied_without_echoing_them(
    tmp_path: Path, name: str
) -> None:
    write(tmp_path, "access/grants/good.yaml", GOOD)
    write(tmp_path, f"access/grants/{name}", GOOD.replace("alice-debug", "other"))
    names, broken = read(tmp_path)
    assert names == ["alice-debug"] and len(broken) == 1, broken
    where, why = broken[0]
    assert not any(c in where + why for c in "\n\r\x1b\u2028") and "control characters" in why, broken


@pytest.mark.parametrize("reason", ['"INC-7\\x1b[2K\\rgrant activated"', '"INC-7\\x00"', '"INC-7\\u2028forged"'])
def test_a_reason_holding_terminal_escapes_or_control_characters_is_refused(tmp_path: Path, reason: str) -> None:
    write(tmp_path, "access/grants/g.yaml", GOOD.replace('reason: "INC-7"', f"reason: {reason}"))
    names, broken = read(tmp_path)
    assert names == [] and [where for where, _ in broken] == ["access/grants/g.yaml:10"], broken


def test_a_reason_over_several_lines_is_kept(tmp_path: Path) -> None:
    write(tmp_path, "access/grants/g.yaml", GOOD.replace('reason: "INC-7"', 'reason: "INC-7:\\n\\tcheckout fails"'))
    grants, broken = load_grants(tmp_path, lambda path: "0" * 40)
    assert not broken and grants[0].reason == "INC-7:\n\tcheckout fails"
