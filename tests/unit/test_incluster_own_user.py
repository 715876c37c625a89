"""Who the controller is to the API server, known from its Pod's token (``incluster.token_user``), so that every
replica's webhook admits the controller's own writes: the webhook's probe through the Service may reach another
replica, and a replica that never learned who it is denied its own leader's applies (seen on the node: the first
revision could never be applied). A token someone else's subject or a malformed one gives no name."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from gitopsguard.cluster import connect
from gitopsguard.cluster.incluster import DIR_VARIABLE, token_user
from tests.unit.test_incluster_connection import kubeconfig, pod_environment


def jwt(claims: object) -> str:
    def part(value: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256'})}.{part(claims)}.c2lnbmF0dXJl"


def pod_with_token(tmp_path: Path, token: str) -> dict[str, str]:
    environment = pod_environment(tmp_path)
    (Path(environment[DIR_VARIABLE]) / "token").write_text(token)
    return environment


def test_a_pod_client_is_known_by_its_service_account_name(tmp_path: Path) -> None:
    me = "system:serviceaccount:gitopsguard-system:gitopsguard"
    api = connect(environ=pod_with_token(tmp_path, jwt({"sub": me})))
    assert token_user(api.configuration) == me


def test_a_kubeconfig_client_has_no_name_from_a_token_even_in_a_pod(tmp_path: Path) -> None:
    environment = pod_with_token(tmp_path, jwt({"sub": "system:serviceaccount:gitopsguard-system:gitopsguard"}))
    api = connect(kubeconfig(tmp_path / "kubeconfig"), environ=environment)
    assert token_user(api.configuration) is None  # the kubeconfig's user is someone else: the probe learns it


@pytest.mark.parametrize(
    "token",
    [
        "first-token",  # not a JWT
        jwt({"sub": "admin"}),  # not a service account
        jwt({"sub": "system:serviceaccount:ns:name:more"}),
        jwt({"sub": "system:serviceaccount:NS:name"}),
        jwt(["system:serviceaccount:ns:name"]),
        jwt({"sub": 7}),
        "a.!!!.c",
    ],
)
def test_a_token_whose_subject_is_no_service_account_gives_no_name(tmp_path: Path, token: str) -> None:
    api = connect(environ=pod_with_token(tmp_path, token))
    assert token_user(api.configuration) is None


@given(st.text(max_size=80))
@example("system:serviceaccount:ns:name\n")
@example("system:serviceaccount:ns:na*me")
def test_any_subject_gives_a_service_account_name_or_none(tmp_path_factory: pytest.TempPathFactory, sub: str) -> None:
    api = connect(environ=pod_with_token(tmp_path_factory.mktemp("t"), jwt({"sub": sub})))
    found = token_user(api.configuration)
    assert found is None or (found == sub and sub.count(":") == 3 and "\n" not in sub and "*" not in sub)
