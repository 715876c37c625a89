"""Whatever a tenant creates, the live scan's writes stay bounded: a namespace's remembered state fits its
budget (the oldest sightings kept), and its PolicyReport parts each fit theirs while holding every finding."""

from __future__ import annotations

import base64
import gzip
import json
from datetime import UTC, datetime, timedelta

from hypothesis import example, given
from hypothesis import strategies as st

from gitopsguard.cluster.reports import results_of, split
from gitopsguard.policy.model import Finding, Severity
from gitopsguard.scan.state import MAX_TRACKED, pack, state_name

T0 = datetime(2026, 12, 5, tzinfo=UTC)
_ROW = st.tuples(st.uuids().map(str), st.integers(0, 10**6), st.text(max_size=16), st.text(max_size=40))


def _rows(raw: list[tuple[str, int, str, str]]) -> list[list[object]]:
    return [[uid, (T0 + timedelta(seconds=s)).isoformat(), digest, name] for uid, s, digest, name in raw]


@given(raw=st.lists(_ROW, max_size=300), budget=st.integers(200, 20_000))
@example(raw=[("u", 1, "d" * 16, "é" * 40)] * 300, budget=200)
def test_a_namespaces_state_fits_its_budget_and_keeps_the_oldest_sightings(
    raw: list[tuple[str, int, str, str]], budget: int
) -> None:
    rows = _rows(raw)
    packed, left_out = pack(rows, budget)
    kept = json.loads(gzip.decompress(base64.b64decode(packed)))
    assert len(packed) <= budget or kept == []
    assert len(kept) + left_out == len(rows)
    newest_kept = max((str(r[1]) for r in kept), default="")
    assert all(str(r[1]) >= newest_kept for r in rows if r not in kept)  # what was left out is never older


def test_no_more_than_the_cap_is_remembered_per_namespace() -> None:
    rows = _rows([(f"uid-{i}", i, "d", "n") for i in range(MAX_TRACKED + 5)])
    packed, left_out = pack(rows)
    assert left_out == 5 and len(json.loads(gzip.decompress(base64.b64decode(packed)))) == MAX_TRACKED


@given(st.text(max_size=300))
@example("a" * 63)
@example("Shop")
def test_every_namespace_has_a_valid_state_name_of_its_own(namespace: str) -> None:
    name = state_name(namespace)
    assert len(name) <= 253 and name == name.lower() and all(c.isalnum() or c == "-" for c in name)
    assert state_name(namespace) != state_name(namespace + "x")


def _failure(name: str, message: str) -> tuple[dict[str, object], Finding]:
    body: dict[str, object] = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "uid": "u"}}
    return body, Finding("team-label", "GG3001", "", "", Severity.HIGH, message, "metadata.labels", "", True)


@given(
    names=st.lists(st.text(min_size=1, max_size=253), max_size=200),
    message=st.text(max_size=2000),
    budget=st.integers(1000, 50_000),
)
@example(names=["p" * 253] * 200, message="x" * 2000, budget=1000)
@example(names=["0"] * 10 + ["\x1f\x07", "000000"], message="00000", budget=1039)  # a part one byte over
def test_policy_report_parts_each_fit_their_budget_and_together_hold_every_finding(
    names: list[str], message: str, budget: int
) -> None:
    results = results_of("shop", [_failure(n, message) for n in names], T0)
    parts = split(results, budget)
    assert [r for part in parts for r in part] == results
    for part in parts:
        assert len(json.dumps(part, separators=(",", ":"))) <= budget or len(part) == 1
