"""The kubeconfig's credentials on aiohttp's connections (cluster/http.py, cluster/rest.py), against real TLS
servers on loopback: the client certificate is presented, the server's certificate and name are checked, and
the bearer token is asked of the configuration at every call, so a rotated token is used at once."""

from __future__ import annotations

import base64
import ssl
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from gitopsguard.cluster import connect
from gitopsguard.cluster.rest import RawApi
from gitopsguard.cluster.retries import POLICY
from gitopsguard.errors import ClusterError, UnreachableError
from tests.httpserver import Server
from tests.tlspki import Authority, Issued

FAST = POLICY.new(backoff_factor=0.001, backoff_jitter=0.0)  # refusals are retried as dropped connections
OK = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n{"major": "1"} '


def kubeconfig(path: Path, server: str, ca: bytes, user: dict[str, str]) -> Path:
    def b64(pem: bytes) -> str:
        return base64.b64encode(pem).decode()

    user = {k: b64(v.encode()) if k.endswith("-data") else v for k, v in user.items()}
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "k", "cluster": {"server": server, "certificate-authority-data": b64(ca)}}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
    }))  # fmt: skip
    return path


def tls_server(tmp_path: Path, issued: Issued, *, client_ca: bytes | None = None) -> Server:
    (tmp_path / "server.pem").write_bytes(issued.cert + issued.key)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "server.pem")
    if client_ca is not None:  # as kube-apiserver --client-ca-file: no certificate from this CA, no connection
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cadata=client_ca.decode())
    return Server(lambda _, __: OK, tls=context)


def with_client_certificate(ca: Authority) -> dict[str, str]:
    alice = ca.issue("alice", client=True)
    return {"client-certificate-data": alice.cert.decode(), "client-key-data": alice.key.decode()}


def test_a_client_certificate_from_the_kubeconfig_is_presented_to_a_server_that_requires_it(tmp_path: Path) -> None:
    ca = Authority()
    server = tls_server(tmp_path, ca.issue("apiserver", hosts=("127.0.0.1",)), client_ca=ca.pem)
    api = connect(kubeconfig(tmp_path / "kubeconfig", server.url, ca.pem, with_client_certificate(ca)))
    assert RawApi(api).get("/version") == {"major": "1"}
    assert server.count == 1 and server.handshake_failures == []


def test_without_its_client_certificate_the_same_server_refuses_us(tmp_path: Path) -> None:
    ca = Authority()
    server = tls_server(tmp_path, ca.issue("apiserver", hosts=("127.0.0.1",)), client_ca=ca.pem)
    api = connect(kubeconfig(tmp_path / "kubeconfig", server.url, ca.pem, {"token": "t"}))
    with pytest.raises(UnreachableError):
        RawApi(api, timeout=2, retry=FAST).get("/version")
    assert server.count == 0 and server.handshake_failures


def test_a_certificate_from_the_clusters_own_ca_for_another_name_is_refused(tmp_path: Path) -> None:
    """Someone holding a certificate the cluster's CA issued for another name (a kubelet's serving
    certificate, say) cannot pose as the API server: the name is checked, and no token is sent to it."""
    ca = Authority()
    server = tls_server(tmp_path, ca.issue("node-1", hosts=("node-1.example",)))
    api = connect(kubeconfig(tmp_path / "kubeconfig", server.url, ca.pem, {"token": "secret-token"}))
    with pytest.raises(UnreachableError, match=r"^https://127\.0\.0\.1:\d+: GET /version: the API server is unreach"):
        RawApi(api, timeout=2, retry=FAST).get("/version")
    assert server.count == 0


def test_a_server_whose_certificate_another_ca_signed_is_refused(tmp_path: Path) -> None:
    server = tls_server(tmp_path, Authority("elsewhere").issue("apiserver", hosts=("127.0.0.1",)))
    api = connect(kubeconfig(tmp_path / "kubeconfig", server.url, Authority().pem, {"token": "secret-token"}))
    with pytest.raises(UnreachableError):
        RawApi(api, timeout=2, retry=FAST).get("/version")
    assert server.count == 0


def test_the_kubeconfigs_tls_server_name_is_the_name_checked(tmp_path: Path) -> None:
    """``tls-server-name``: the server is reached at an address its certificate does not name (a tunnel,
    a load balancer); the name given is sent and checked instead, and nothing else is accepted."""
    ca = Authority()
    server = tls_server(tmp_path, ca.issue("apiserver", hosts=("kubernetes.default.svc",)))
    api = connect(kubeconfig(tmp_path / "kubeconfig", server.url, ca.pem, {"token": "t"}))
    with pytest.raises(UnreachableError):
        RawApi(api, timeout=2, retry=FAST).get("/version")
    api.configuration.tls_server_name = "kubernetes.default.svc"
    assert RawApi(api, timeout=2, retry=FAST).get("/version") == {"major": "1"}
    api.configuration.tls_server_name = "node-1.example"
    with pytest.raises(UnreachableError):
        RawApi(api, timeout=2, retry=FAST).get("/version")


def test_a_rotated_token_is_sent_from_the_next_call_on() -> None:
    """A bound service account token rotates under a running controller (and a refresh hook renews an
    expiring one): the configuration is asked at every call, never once at construction."""
    server = Server(lambda _, __: OK)
    configuration = client.Configuration()
    configuration.host = server.url
    configuration.api_key = {"authorization": "first"}
    configuration.api_key_prefix = {"authorization": "Bearer"}
    raw = RawApi(client.ApiClient(configuration))
    raw.get("/version")
    configuration.api_key = {"authorization": "second"}
    raw.get("/version")
    assert [authorization(r) for r in server.requests] == ["Bearer first", "Bearer second"]


def test_a_refresh_hook_is_asked_for_the_token_of_every_call(tmp_path: Path) -> None:
    """As in-cluster configuration does: the hook reads the token file the kubelet rewrites."""
    server, token_file = Server(lambda _, __: OK), tmp_path / "token"
    configuration = client.Configuration()
    configuration.host = server.url

    def refresh(c: client.Configuration) -> None:
        c.api_key = {"authorization": f"Bearer {token_file.read_text()}"}

    configuration.refresh_api_key_hook = refresh  # type: ignore[assignment]
    raw = RawApi(client.ApiClient(configuration))
    for token in ("one", "two", "three"):
        token_file.write_text(token)
        raw.get("/version")
    assert [authorization(r) for r in server.requests] == ["Bearer one", "Bearer two", "Bearer three"]


def test_a_kubeconfig_ca_that_cannot_be_read_is_a_cluster_error_saying_what_to_check(tmp_path: Path) -> None:
    configuration = client.Configuration()
    configuration.host = "https://127.0.0.1:1"
    configuration.ssl_ca_cert = str(tmp_path / "missing.crt")
    with pytest.raises(ClusterError, match=r"^https://127\.0\.0\.1:1: the kubeconfig's TLS settings cannot be used"):
        RawApi(client.ApiClient(configuration))


def authorization(raw: bytes) -> str:
    for line in raw.split(b"\r\n\r\n")[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"authorization":
            return value.strip().decode()
    return ""
