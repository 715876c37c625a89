"""Only the API server may speak to the webhook: given a client CA, the server (real TLS on loopback) serves a
peer that shows a certificate that CA signed, with an allowed name when names are given, and no one else;
and no one, authenticated or not, can hold its slots by connecting and saying nothing.

Attackers: anyone with a route to the port (a Pod anywhere in the cluster): no certificate, one from another
CA, one from the right CA under another name, or a flood of silent or trickling connections."""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gitopsguard.admission.certs import issue
from gitopsguard.admission.peers import read_client_ca
from gitopsguard.admission.review import Judgement, Verdict
from gitopsguard.admission.server import AdmissionServer, Settings
from gitopsguard.devcluster.pki import WEBHOOK_CLIENT_NAME, webhook_client_certificates
from gitopsguard.errors import AdmissionError
from gitopsguard.policy import DenyLevel, parse_policies
from tests.admissionreview import BASELINE, hack_a_node_pod, review

SERVING = issue(["127.0.0.1"], datetime.now(UTC))
REVIEW = json.dumps(review(hack_a_node_pod("team"), username="carol")).encode()


@dataclass(frozen=True)
class Identity:
    """A client's certificate and key files (None: it shows no certificate)."""

    cert: Path | None = None
    key: Path | None = None


@dataclass
class Served:
    server: AdmissionServer
    ca: str  # the client CA it trusts
    api_server: Identity  # what the API server shows
    judged: list[Verdict]  # every verdict it reached (what would be recorded)


def _identity(folder: Path, name: str, cert: bytes, key: bytes) -> Identity:
    (folder / f"{name}.crt").write_bytes(cert)
    (folder / f"{name}.key").write_bytes(key)
    return Identity(folder / f"{name}.crt", folder / f"{name}.key")


def _start(tmp_path: Path, settings: Settings, ca: str, identity: Identity) -> Served:
    judgement = Judgement(parse_policies({"p.yaml": BASELINE}), DenyLevel.LOW)
    judged: list[Verdict] = []
    server = AdmissionServer(("127.0.0.1", 0), SERVING.context(), lambda: judgement,
                             observe=lambda verdict, *_: judged.append(verdict), settings=settings)  # fmt: skip
    server.start()
    return Served(server, ca, identity, judged)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    ca, cert, key = webhook_client_certificates(datetime.now(UTC))
    settings = Settings(timeout=1.0, idle=2.0, max_connections=4, workers=2, handshake=1.0, max_handshakes=8,
                        client_ca=ca.decode(), client_names=frozenset({WEBHOOK_CLIENT_NAME}))  # fmt: skip
    running = _start(tmp_path, settings, ca.decode(), _identity(tmp_path, "apiserver", cert, key))
    yield running
    running.server.stop()


def _context(identity: Identity) -> ssl.SSLContext:
    context = ssl.create_default_context(cadata=SERVING.bundle.decode())
    if identity.cert is not None:
        context.load_cert_chain(identity.cert, identity.key)
    return context


def _post(served: Served, identity: Identity) -> int:
    """The status of one POST /validate; 0 when the connection failed (refused in or after the handshake)."""
    connection = http.client.HTTPSConnection("127.0.0.1", served.server.server_port, context=_context(identity),
                                             timeout=5)  # fmt: skip
    try:
        connection.request("POST", "/validate", body=REVIEW, headers={"Content-Type": "application/json"})
        return connection.getresponse().status
    except (OSError, http.client.HTTPException):
        return 0
    finally:
        connection.close()


def test_the_api_servers_certificate_is_served(served: Served) -> None:
    assert _post(served, served.api_server) == 200
    assert [v.request.username for v in served.judged] == ["carol"]


def test_a_review_without_a_client_certificate_is_refused_and_leaves_no_record(served: Served) -> None:
    assert _post(served, Identity()) == 0
    assert served.judged == []  # nothing judged, so nothing recorded as carol's
    assert _post(served, served.api_server) == 200  # and the server serves on


def test_a_certificate_from_another_ca_is_refused(served: Served, tmp_path: Path) -> None:
    _, cert, key = webhook_client_certificates(datetime.now(UTC))  # same name, a CA of the attacker's own
    assert _post(served, _identity(tmp_path, "stranger", cert, key)) == 0
    assert served.judged == []


def test_a_certificate_from_the_right_ca_under_a_name_not_allowed_is_refused(tmp_path: Path) -> None:
    ca, cert, key = webhook_client_certificates(datetime.now(UTC), name="some-other-client")
    settings = Settings(timeout=1.0, idle=2.0, client_ca=ca.decode(), client_names=frozenset({"kube-apiserver"}))
    running = _start(tmp_path, settings, ca.decode(), _identity(tmp_path, "other", cert, key))
    try:
        assert _post(running, running.api_server) == 0
        assert running.judged == []
    finally:
        running.server.stop()


def test_without_a_client_ca_any_client_is_served_as_before(tmp_path: Path) -> None:
    running = _start(tmp_path, Settings(timeout=1.0, idle=2.0), "", Identity())
    try:
        assert _post(running, Identity()) == 200
    finally:
        running.server.stop()


def _silent_flood(port: int, stop: threading.Event, held: list[socket.socket]) -> None:
    """Keep opening TCP connections that never say a word (no ClientHello), as fast as they are cut."""
    while not stop.is_set():
        try:
            held.append(socket.create_connection(("127.0.0.1", port), timeout=1))
        except OSError:
            time.sleep(0.01)
        if len(held) > 200:
            held.pop(0).close()


def test_silent_connections_from_strangers_never_keep_the_api_server_out(served: Served) -> None:
    # before: each accepted connection took a slot until its handshake timed out, so 4 strangers kept every
    # slot; now handshakes are counted apart, and the oldest silent one is cut for the newest
    stop, held = threading.Event(), list[socket.socket]()
    flood = threading.Thread(target=_silent_flood, args=(served.server.server_port, stop, held), daemon=True)
    flood.start()
    try:
        time.sleep(0.5)
        statuses = [_post(served, served.api_server) for _ in range(10)]
    finally:
        stop.set()
        flood.join(timeout=5)
        for sock in held:
            sock.close()
    assert statuses == [200] * 10
    assert served.server.handshakes.cut > 0  # the flood really did fill the handshakes


def test_a_handshake_trickled_a_byte_at_a_time_is_cut_at_its_deadline(served: Served) -> None:
    slow = socket.create_connection(("127.0.0.1", served.server.server_port))
    hello = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(64)  # a ClientHello's start, never finished
    started = time.monotonic()
    slow.settimeout(0.3)
    closed = False
    for byte in hello:  # each byte well within the per-read timeout: only the deadline ends it
        try:
            slow.sendall(bytes([byte]))
            closed = slow.recv(100) == b""
        except TimeoutError:
            continue
        except OSError:
            closed = True
        if closed:
            break
    slow.close()
    assert closed and time.monotonic() - started < 2.5  # handshake 1 s, reaped every 0.5 s


def test_an_authenticated_peer_saying_nothing_holds_one_slot_and_others_are_served(served: Served) -> None:
    # the API server's own idle connections are kept (idle timeout); the cap bounds them, it does not starve it
    context = _context(served.api_server)
    quiet = context.wrap_socket(socket.create_connection(("127.0.0.1", served.server.server_port)),
                                server_hostname="127.0.0.1")  # fmt: skip
    try:
        assert _post(served, served.api_server) == 200
    finally:
        quiet.close()


def test_a_client_ca_file_with_a_private_key_or_no_certificate_is_refused_naming_the_file(tmp_path: Path) -> None:
    ca, _, key = webhook_client_certificates(datetime.now(UTC))
    (tmp_path / "with-key.pem").write_bytes(ca + key)
    (tmp_path / "garbage.pem").write_text("not a certificate\n")
    assert read_client_ca(_write(tmp_path / "ca.pem", ca)) == ca.decode()
    for name in ("with-key.pem", "garbage.pem", "missing.pem"):
        with pytest.raises(AdmissionError, match=f"^{tmp_path / name}: --admission-client-ca"):
            read_client_ca(tmp_path / name)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
