"""What aiohttp's kept-alive TLS connections cost in memory (cluster/http.py): a batch opens up to 64 of them,
and asyncio gave each a 256 KiB read buffer, zero-filled (so resident) when it connects: 16 MiB for one
batch, the larger part of issue 18's peak-RSS regression (bench/README.md)."""

from __future__ import annotations

import ssl
import threading
import tracemalloc
from pathlib import Path

from kubernetes import client

from gitopsguard.cluster.http import CONNECTIONS
from gitopsguard.cluster.rest import RawApi, Request
from tests import httpserver
from tests.httpserver import Server
from tests.tlspki import Authority

OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


def tls_api(tmp_path: Path) -> tuple[RawApi, Server]:
    """A RawApi to a TLS server that holds each answer until ``CONNECTIONS`` requests are in: a batch as
    wide as the pool then has every connection open at once."""
    ca = Authority()
    issued = ca.issue("apiserver", hosts=("127.0.0.1",))
    (tmp_path / "server.pem").write_bytes(issued.cert + issued.key)
    (tmp_path / "ca.crt").write_bytes(ca.pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "server.pem")
    together = threading.Barrier(CONNECTIONS, timeout=30)

    def answer(_: int, __: bytes) -> bytes:
        together.wait()
        return OK

    server = Server(answer, tls=context)
    configuration = client.Configuration()
    configuration.host = server.url
    configuration.ssl_ca_cert = str(tmp_path / "ca.crt")
    return RawApi(client.ApiClient(configuration), timeout=30), server


def test_a_full_pool_of_tls_connections_holds_well_under_a_quarter_of_a_mib_each(tmp_path: Path) -> None:
    """A contributor's revision of 2,000 objects makes the pass open the whole pool; the pool's memory has to
    stay small beside the pass's own (5,000 objects: about 60 MB of Python objects)."""
    raw, server = tls_api(tmp_path)
    batch = [Request("GET", f"/api/v1/namespaces/ns/configmaps/cm-{n}", {}, None) for n in range(CONNECTIONS)]
    tracemalloc.start(30)  # frames enough to tell the server's threads (in this process too) from the client
    try:
        before = tracemalloc.take_snapshot()
        answers = raw.send_all(batch, CONNECTIONS)
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    assert [a.status for a in answers] == [200] * CONNECTIONS
    assert server.connections == CONNECTIONS  # every connection was open at once, and is kept for the next batch
    client_side = [tracemalloc.Filter(False, httpserver.__file__, all_frames=True)]
    grown = after.filter_traces(client_side).compare_to(before.filter_traces(client_side), "filename")
    held = sum(stat.size_diff for stat in grown)
    assert held < CONNECTIONS * 96 * 1024, f"{held / 2**20:.1f} MiB held by {CONNECTIONS} kept-alive connections"
