"""Hostile AdmissionReviews: every input is read into a request or refused with a clear message (the uid
kept where there is one), never an unexpected exception; what reaches the user is bounded and printable."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from gitopsguard.admission import BadReviewError, parse_review
from gitopsguard.admission.request import MAX_REVIEW_BYTES
from gitopsguard.admission.text import WARNING_RUNES, WARNINGS_TOTAL, message_lines, printable, warning_lines
from tests.admissionreview import hack_a_node_pod, review


def _with(request_change: dict[str, Any]) -> bytes:
    document = review(hack_a_node_pod("team"))
    document["request"] = {**document["request"], "uid": "u-7", **request_change}
    return json.dumps(document).encode()


@pytest.mark.parametrize(("data", "says", "uid"), [
    (b"{", "not valid JSON", ""),
    (b"\xff\xfe", "not valid JSON", ""),
    (b"[1, 2]", "apiVersion must be admission.k8s.io/v1", ""),
    (json.dumps({"apiVersion": "admission.k8s.io/v1beta1", "request": {}}).encode(), "admissionReviewVersions", ""),
    (json.dumps({"apiVersion": "admission.k8s.io/v1", "request": []}).encode(), "`request` must be an object", ""),
    (json.dumps({"apiVersion": "admission.k8s.io/v1", "request": {"uid": 7}}).encode(), "`uid` must be text", ""),
    (b'{"apiVersion": "admission.k8s.io/v1", "request": {"uid": "u", "x": NaN}}', "not valid JSON", ""),
    (b'{"apiVersion": "admission.k8s.io/v1", "request": {"uid": "u", "x": ' + b"9" * 5000 + b"}}",
     "not valid JSON", ""),
    (b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "not valid JSON", ""),
    (_with({"operation": "PATCH"}), "operation 'PATCH' is not one of", "u-7"),
    (_with({"object": "a pod"}), "`object` must be an object", "u-7"),
    (_with({"object": {"kind": "Pod", "metadata": []}}), "`object.metadata` must be an object", "u-7"),
    (_with({"userInfo": {"username": "a", "groups": "admins"}}), "userInfo.groups must be a list", "u-7"),
    (_with({"userInfo": {"username": "a" * 5000}}), "`username` must be text of at most", "u-7"),
    (_with({"dryRun": "yes"}), "dryRun must be true or false", "u-7"),
    (_with({"kind": "Pod"}), "`kind` must be an object", "u-7"),
])  # fmt: skip
def test_a_review_that_is_not_one_is_refused_with_what_is_wrong(data: bytes, says: str, uid: str) -> None:
    with pytest.raises(BadReviewError, match=says) as error:
        parse_review(data)
    assert error.value.uid == uid
    assert str(error.value).startswith("AdmissionReview")


def test_a_review_over_the_size_bound_is_refused_before_it_is_parsed() -> None:
    with pytest.raises(BadReviewError, match="over the"):
        parse_review(b" " * (MAX_REVIEW_BYTES + 1))


def test_the_api_servers_review_is_read_whole() -> None:
    request = parse_review(json.dumps(review(hack_a_node_pod("team"), username="mallory", dry_run=True)).encode())
    assert (request.kind, request.namespace, request.name, request.operation) == ("Pod", "team", "my-pod", "CREATE")
    assert request.username == "mallory" and request.dry_run and request.subject == "Pod/team/my-pod"


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=30))  # fmt: skip
@example({"apiVersion": "admission.k8s.io/v1", "request": {"uid": "u", "userInfo": {"groups": [1]}}})
@example({"apiVersion": "admission.k8s.io/v1", "request": {"uid": "u", "name": None, "object": {"metadata": None}}})
def test_any_json_is_read_or_refused_never_crashes(document: Any) -> None:
    version = "admission.k8s.io/v1"
    envelope = {"apiVersion": version, "request": document} if not isinstance(document, dict) else document
    for candidate in (document, envelope, {"apiVersion": version, "request": {"uid": "u", "x": document}}):
        with contextlib.suppress(BadReviewError):
            parse_review(json.dumps(candidate).encode())


@given(st.lists(st.text(max_size=600), max_size=60))
@example(["\u202eevil\u202c", "line\nbreak", "\x00\x1b[31m"])
def test_warnings_are_printable_and_within_the_api_servers_bounds(lines: list[str]) -> None:
    kept = warning_lines(lines)
    assert sum(len(w) for w in kept) <= WARNINGS_TOTAL + 80
    assert all(len(w) <= WARNING_RUNES and w.isprintable() for w in kept)
    assert len(kept) == len(lines) or kept[-1].startswith("... and ")
    message = message_lines(lines)
    assert all(line.isprintable() for line in message.split("\n"))


def test_bidi_overrides_and_escape_sequences_are_shown_escaped() -> None:
    assert printable("a\u202eb\x1b[0m\n") == "a\\u202eb\\u001b[0m\\u000a"


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=25,
)
_SHAPES = st.fixed_dictionaries({
    "metadata": st.one_of(st.none(), st.fixed_dictionaries({}, optional={"name": _JSON, "namespace": _JSON,
                                                                         "labels": _JSON, "annotations": _JSON})),
    "spec": _JSON,
}, optional={"status": _JSON})  # fmt: skip


@given(st.sampled_from(["Pod", "Deployment", "Job", "CronJob", "Namespace", "RoleBinding", "Service"]), _SHAPES)
@example("Pod", {"metadata": {"labels": "x"}, "spec": {"containers": "x"}})
@example("Job", {"metadata": {"labels": ["a"]}, "spec": None})
@example("Deployment", {"metadata": None, "spec": {"template": {"spec": {"containers": [None, 1, "x"]}}}})
def test_any_object_shape_gets_a_verdict_from_both_webhooks_never_an_exception(kind: str, body: dict[str, Any]) -> None:
    from datetime import UTC, datetime

    from gitopsguard.admission import Judgement, mutate_request, response, validate
    from gitopsguard.policy import DenyLevel, parse_policies
    from tests.admissionreview import BASELINE, MAGTAPE, TEAM_LABEL, TTL

    judgement = Judgement(parse_policies({"a": BASELINE, "b": MAGTAPE, "c": TEAM_LABEL, "d": TTL}), DenyLevel.LOW)
    version = {"Pod": "v1", "Namespace": "v1", "Service": "v1", "Deployment": "apps/v1", "Job": "batch/v1",
               "CronJob": "batch/v1beta1", "RoleBinding": "rbac.authorization.k8s.io/v1"}[kind]  # fmt: skip
    document = review({"apiVersion": version, "kind": kind, "metadata": {"name": "n", "namespace": "team"}})
    document["request"]["object"] = {"apiVersion": version, "kind": kind, **body}
    request = parse_review(json.dumps(document).encode())
    for verdict in (validate(request, judgement, now=datetime.now(UTC), namespace=None),
                    mutate_request(request, judgement)):  # fmt: skip
        json.dumps(response(verdict))
