"""A PolicyReport result never carries an empty property: server-side apply sends an empty string in that map
as null, and the CRD refuses the whole report, hiding every finding of the namespace."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import example, given
from hypothesis import strategies as st

from gitopsguard.cluster.reports import results_of
from gitopsguard.policy.model import Finding, Severity

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


@given(st.text(max_size=30), st.text(max_size=10))
@example("", "GG3002")  # a CEL rule without a field path: its namespace's report failed
def test_every_property_of_a_result_is_a_non_empty_string(path: str, code: str) -> None:
    finding = Finding("p", code, "", "", Severity.HIGH, "m", path, "", True)
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x", "uid": "u"}}
    (result,) = results_of("shop", [(body, finding)], NOW)
    properties = result["properties"]
    assert all(isinstance(v, str) and v for v in properties.values())
    assert properties.get("path", "") == path[:1000] and properties.get("code", "") == code
