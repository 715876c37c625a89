"""cluster.rest.error_for: every failed answer becomes one typed ClusterError, the object named first."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from kubernetes import client

from gitopsguard.cluster.rest import RawApi, error_for
from gitopsguard.errors import (
    ClusterError,
    ConflictError,
    ForbiddenError,
    InvalidError,
    NotFoundError,
    ServerTimeoutError,
    TooManyRequestsError,
    UnavailableError,
)
from tests.httpserver import Server

SUBJECT = "ConfigMap/gitopsguard-system/x"
TABLE = [
    (404, NotFoundError, False),
    (409, ConflictError, False),
    (401, ForbiddenError, False),
    (403, ForbiddenError, False),
    (400, InvalidError, False),
    (422, InvalidError, False),
    (429, TooManyRequestsError, True),
    (504, ServerTimeoutError, True),
    (500, ClusterError, False),
    (502, UnavailableError, True),
    (503, UnavailableError, True),
]


@pytest.mark.parametrize(("status", "kind", "retryable"), TABLE)
def test_each_status_becomes_its_class_with_the_object_named_first(
    status: int, kind: type[ClusterError], retryable: bool
) -> None:
    error = error_for(status, {"message": "the server's words"}, SUBJECT)
    assert type(error) is kind
    assert error.retryable is retryable
    assert str(error).startswith(f"{SUBJECT}: the server's words")


def test_a_refusal_to_a_units_service_account_asks_to_grant_that_account_not_gitopsguards() -> None:
    """`make demo`: team shop's folder writing into namespace payments, applied as shop's account, was told to
    "grant gitopsguard's account this verb": the wrong account, and a grant the tenant must not get that way."""
    refused = ('configmaps "x" is forbidden: User "system:serviceaccount:shop:shop-deployer" cannot patch resource '
               '"configmaps" in API group "" in the namespace "payments"')  # fmt: skip
    error = error_for(403, {"message": refused, "reason": "Forbidden"}, "ConfigMap/payments/x")
    assert type(error) is ForbiddenError
    assert "gitopsguard's account" not in str(error)
    assert str(error).endswith(f"{refused}; grant the user it names this verb on this object (RBAC)")


def test_unaccepted_credentials_ask_to_renew_them_not_for_an_rbac_grant() -> None:
    """401 is authentication: no RBAC grant helps; an expired token or a kubeconfig for another cluster does."""
    error = error_for(401, {"message": "Unauthorized", "reason": "Unauthorized"}, SUBJECT)
    assert type(error) is ForbiddenError and not error.retryable
    assert "RBAC" not in str(error) and "renew them" in str(error)


def test_a_status_outside_the_table_is_a_plain_cluster_error_naming_its_code() -> None:
    error = error_for(410, {"message": "too old resource version"}, SUBJECT)
    assert type(error) is ClusterError and not error.retryable
    assert str(error) == f"{SUBJECT}: too old resource version (HTTP 410)"


def test_a_server_timeout_reason_is_a_server_timeout_whatever_its_code() -> None:
    assert type(error_for(500, {"reason": "ServerTimeout"}, SUBJECT)) is ServerTimeoutError


def test_invalid_keeps_the_servers_causes() -> None:
    causes = [{"reason": "FieldValueInvalid", "message": 'InvalidError value: "A"', "field": "metadata.name"}]
    error = error_for(422, {"message": "is invalid", "details": {"causes": causes}}, SUBJECT)
    assert isinstance(error, InvalidError)
    assert error.causes == tuple(causes)


def test_throttling_carries_the_retry_after_header_else_the_status_retry_after_seconds() -> None:
    assert error_for(429, {}, SUBJECT, retry_after="3").delay == 3.0
    assert error_for(429, {"details": {"retryAfterSeconds": 2}}, SUBJECT).delay == 2.0
    assert error_for(429, {}, SUBJECT).delay is None


@given(st.text(max_size=40), st.one_of(st.none(), st.integers(), st.text(max_size=20), st.lists(st.integers())))
@example("99999999999999999999", 10**30)
@example("-1", "1e9")
@example("²", "³")
def test_hostile_retry_after_values_never_break_the_translation(header: str, seconds: object) -> None:
    error = error_for(429, {"details": {"retryAfterSeconds": seconds}}, SUBJECT, retry_after=header)
    assert isinstance(error, TooManyRequestsError)
    assert error.delay is None or 0 <= error.delay < 10**7


@given(
    st.one_of(
        st.none(),
        st.text(max_size=10),
        st.integers(),
        st.lists(st.one_of(st.text(max_size=5), st.dictionaries(st.text(max_size=5), st.integers()))),
    )
)
def test_malformed_causes_are_dropped_not_raised(causes: object) -> None:
    error = error_for(422, {"details": {"causes": causes}}, SUBJECT)
    assert isinstance(error, InvalidError)
    assert all(isinstance(cause, dict) for cause in error.causes)


def answering(status: int, body: bytes) -> Server:
    head = b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (status, len(body))
    return Server(lambda _, __: head + body)


def raw_api(server: Server) -> RawApi:
    configuration = client.Configuration()
    configuration.host = f"http://127.0.0.1:{server.port}"
    return RawApi(client.ApiClient(configuration), timeout=5)


def test_a_get_of_an_absent_object_raises_not_found_naming_it() -> None:
    server = answering(404, b'{"kind":"Status","message":"configmaps \\"x\\" not found","reason":"NotFound"}')
    with pytest.raises(NotFoundError, match=r'^ConfigMap/gitopsguard-system/x: configmaps "x" not found'):
        raw_api(server).get("/api/v1/namespaces/gitopsguard-system/configmaps/x", SUBJECT)


def test_a_verb_without_a_subject_names_its_method_and_path() -> None:
    server = answering(403, b'{"message":"forbidden"}')
    with pytest.raises(ForbiddenError, match=r"^DELETE /api/v1/namespaces/a: forbidden; grant"):
        raw_api(server).delete("/api/v1/namespaces/a")


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"ok", "is not JSON"),
        (b"[1, 2]", "not an object"),
        (b'{"items": ' + b"[" * 5000 + b"]" * 5000 + b"}", "nested deeper than this client reads"),
    ],
)
def test_a_successful_answer_that_is_not_one_json_object_is_an_error_naming_the_object(body: bytes, words: str) -> None:
    # before: {} (or the first bytes as a "message"), so a list read as empty; a deep one raised RecursionError
    server = answering(200, body)
    with pytest.raises(ClusterError, match=f"^{SUBJECT}: the answer .*{words}"):
        raw_api(server).get("/api/v1/namespaces/gitopsguard-system/configmaps/x", SUBJECT)
    with pytest.raises(ClusterError, match=words):
        raw_api(server).request("GET", "/api/v1/namespaces/gitopsguard-system/configmaps")
