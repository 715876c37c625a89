"""The identity a tenant unit acts as: only Kubernetes names become an ``Impersonate-User`` header (a colon or
line break would name another user or add a header), and an impersonating RawApi sends exactly that header over
the plain one's connections."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from kubernetes import client

from gitopsguard.cluster.impersonation import ServiceAccount, account_for
from gitopsguard.cluster.rest import RawApi, Request, error_for
from gitopsguard.cluster.retries import POLICY
from gitopsguard.errors import ForbiddenError, IdentityError, ImpersonationRefusedError
from tests.httpserver import Server, json_echo


def raw_api(server: Server) -> RawApi:
    configuration = client.Configuration()
    configuration.host = server.url
    configuration.api_key = {"authorization": "t0ken"}
    configuration.api_key_prefix = {"authorization": "Bearer"}
    return RawApi(client.ApiClient(configuration), retry=POLICY.new(backoff_factor=0.001))


def head(raw: bytes) -> list[bytes]:
    return raw.split(b"\r\n\r\n")[0].split(b"\r\n")


@given(st.text(max_size=40), st.text(max_size=40))
@example("team-a", "deployer\r\nImpersonate-Group: system:masters")
@example("team-a", "x:system:masters")
@example("kube-system:x", "y")
@example("team-a", "a/b")
@example("Team-A", "deployer")
@example("team-a", "..")
@example("", "deployer")
def test_a_service_account_name_that_could_forge_a_header_or_user_is_refused(namespace: str, name: str) -> None:
    """Whatever an option or a Unit names, the account's user is exactly ``system:serviceaccount:NS:NAME`` of
    two Kubernetes names, or it is refused before any header is made."""
    try:
        account = ServiceAccount(namespace, name)
    except IdentityError as refused:
        assert "not a Kubernetes name" in str(refused)
        return
    assert account.user.split(":") == ["system", "serviceaccount", namespace, name]
    assert all(c.isascii() and (c.isalnum() or c in "-.") for c in namespace + name)
    assert account.headers() == {"Impersonate-User": account.user}


def test_an_option_without_a_namespace_is_refused_and_names_the_option() -> None:
    with pytest.raises(IdentityError, match=r"^--service-account: 'deployer' is not NAMESPACE/NAME"):
        account_for("deployer", "", where="--service-account")


def test_a_unit_naming_no_account_takes_the_operator_default_and_none_means_our_own() -> None:
    assert account_for("", "platform/applier", where="x") == ServiceAccount("platform", "applier")
    assert account_for("team-a/deployer", "platform/applier", where="x") == ServiceAccount("team-a", "deployer")
    assert account_for("deployer", "", namespace="team-b", where="x") == ServiceAccount("team-b", "deployer")
    assert account_for("", "applier", namespace="team-b", where="x") == ServiceAccount("team-b", "applier")
    assert account_for("", "", where="x") is None


@pytest.mark.parametrize("named", ["kube-system/namespace-controller", "team-a/deployer", "/deployer", "a/b/c"])
def test_a_unit_naming_an_account_of_another_namespace_is_refused(named: str) -> None:
    """A team writes its Unit: its serviceAccountName is resolved in the Unit's own namespace, never another."""
    with pytest.raises(IdentityError, match=r"^Unit team-b/web: serviceAccountName .* names another namespace"):
        account_for(named, "platform/applier", namespace="team-b", where="Unit team-b/web")


def test_an_impersonating_api_sends_the_account_over_the_same_connections_and_the_plain_one_does_not() -> None:
    server = Server(json_echo)
    plain = raw_api(server)
    tenant = plain.impersonating(ServiceAccount("team-a", "deployer"))
    plain.get("/o/plain")
    tenant.send_all([Request("PATCH", "/o/tenant", {"dryRun": "All"}, b"{}")], 1)
    tenant.delete("/o/tenant")
    plain_head, batch_head, delete_head = (head(r) for r in server.requests[-3:])
    assert not any(line.lower().startswith(b"impersonate") for line in plain_head)
    for lines in (batch_head, delete_head):
        assert [line for line in lines if line.lower().startswith(b"impersonate")] == [
            b"Impersonate-User: system:serviceaccount:team-a:deployer"
        ]
    assert server.connections == 1  # one kept-alive connection served both identities


def test_the_servers_refusal_to_impersonate_is_typed_and_says_which_rbac_is_missing() -> None:
    message = ('serviceaccounts "deployer" is forbidden: User "system:serviceaccount:gitopsguard-system:gitopsguard" '
               'cannot impersonate resource "serviceaccounts" in API group "" in the namespace "team-a"')  # fmt: skip
    error = error_for(403, {"message": message}, "ConfigMap/team-a/a (apps/a.yaml): dry run refused")
    assert isinstance(error, ImpersonationRefusedError)
    assert str(error).startswith("ConfigMap/team-a/a (apps/a.yaml): dry run refused: ")
    assert "gitopsguard-impersonate-tenants" in str(error)
    tenants_own = error_for(403, {"message": 'configmaps "a" is forbidden: User "x" cannot patch'}, "ConfigMap/a")
    assert type(tenants_own) is ForbiddenError
