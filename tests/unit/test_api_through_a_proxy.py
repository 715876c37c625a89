"""A kubeconfig's proxy (``proxy-url``) on aiohttp's connections (cluster/http.py): requests tunnel through an
HTTP CONNECT proxy on loopback to a real TLS server, the server's certificate still checked end to end;
``no_proxy`` sends them direct; a SOCKS proxy is refused rather than silently bypassed."""

from __future__ import annotations

import socket
import ssl
import threading
from pathlib import Path

import pytest
from kubernetes import client

from gitopsguard.cluster.rest import RawApi
from gitopsguard.errors import ClusterError
from tests.httpserver import Server
from tests.tlspki import Authority

OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


class ConnectProxy:
    """Answers CONNECT host:port with 200 and then pipes bytes both ways; records what it was asked."""

    def __init__(self) -> None:
        self.tunnels: list[bytes] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            conn, _ = self.listener.accept()
            threading.Thread(target=self._tunnel, args=(conn,), daemon=True).start()

    def _tunnel(self, conn: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            head += conn.recv(4096)
        line = head.split(b"\r\n")[0]
        self.tunnels.append(line)
        host, _, port = line.split(b" ")[1].rpartition(b":")
        upstream = socket.create_connection((host.decode(), int(port)))
        conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        threading.Thread(target=_pipe, args=(upstream, conn), daemon=True).start()
        _pipe(conn, upstream)


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        sink.close()


def proxied(tmp_path: Path, proxy: str, no_proxy: str = "") -> tuple[RawApi, Server]:
    ca = Authority()
    issued = ca.issue("apiserver", hosts=("127.0.0.1",))
    (tmp_path / "server.pem").write_bytes(issued.cert + issued.key)
    (tmp_path / "ca.crt").write_bytes(ca.pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "server.pem")
    server = Server(lambda _, __: OK, tls=context)
    configuration = client.Configuration()
    configuration.host = server.url
    configuration.ssl_ca_cert = str(tmp_path / "ca.crt")
    configuration.proxy = proxy
    configuration.no_proxy = no_proxy
    return RawApi(client.ApiClient(configuration), timeout=5), server


def test_requests_tunnel_through_the_kubeconfigs_proxy_with_tls_checked_end_to_end(tmp_path: Path) -> None:
    proxy = ConnectProxy()
    raw, server = proxied(tmp_path, proxy.url)
    assert raw.get("/version") == {}
    assert proxy.tunnels == [f"CONNECT 127.0.0.1:{server.port} HTTP/1.1".encode()]
    assert server.count == 1


def test_a_host_in_no_proxy_is_reached_directly(tmp_path: Path) -> None:
    proxy = ConnectProxy()
    raw, server = proxied(tmp_path, proxy.url, no_proxy="127.0.0.1")
    assert raw.get("/version") == {}
    assert proxy.tunnels == [] and server.count == 1


def test_a_socks_proxy_is_refused_rather_than_bypassed_and_its_password_is_not_shown() -> None:
    api = client.ApiClient(client.Configuration())  # the kubernetes client needs PySocks for SOCKS at all
    api.configuration.host = "https://127.0.0.1:6443"
    api.configuration.proxy = "socks5://user:password@127.0.0.1:1080"
    with pytest.raises(ClusterError, match=r"a socks5 proxy with these settings is not supported") as refused:
        RawApi(api)
    assert "password" not in str(refused.value)
