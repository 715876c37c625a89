"""Attack: anyone who reaches the webhook's port takes every connection slot, and the API server, finding no
slot, fails every covered request closed (failurePolicy Fail): no tenant can create a Pod.

The server caps connections (admission/server.py, Settings.max_connections = 256) and closes one over the
cap at once. Only the body is read against a deadline (_Handler._body); the request line and headers are
read by http.server with the per-read socket timeout ``idle`` (10 s, set in finish_request), so a client that
sends one header line every few seconds keeps its slot for as long as it likes (slowloris). No client
certificate is asked for, so this takes no credential: 256 TLS connections from anyone. In a cluster that is
any Pod (the Service `gitopsguard-webhook` is reachable cluster-wide unless a NetworkPolicy says otherwise).

Attacker: anyone with a route to the port.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time

import pytest

from gitopsguard.admission.podsecurity import pod_security_seam
from gitopsguard.admission.review import Judgement
from gitopsguard.admission.server import DEFAULT
from gitopsguard.cluster.rest import RawApi
from gitopsguard.policy import DenyLevel, PolicySet
from tests.admissionreview import hack_a_node_pod
from tests.integration.conftest import bind_user
from tests.waiting import eventually

from .conftest import label

pytestmark = pytest.mark.integration
HOLD = DEFAULT.max_connections + 64


def hold_slots(port: int, stop: threading.Event) -> None:
    """Keep up to HOLD connections open: each finishes its TLS handshake and then sends one header line every
    2 s (the server's per-read timeout is ``idle``, 10 s, and only the body has a deadline), so a slot once
    taken is never given back; slots freed by others are taken as they come."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # a stranger trusts nothing either way
    held: list[ssl.SSLSocket] = []
    while not stop.is_set():
        while len(held) < HOLD and not stop.is_set():
            try:
                raw = socket.create_connection(("127.0.0.1", port), timeout=1)
                sock = context.wrap_socket(raw)
                sock.sendall(b"POST /validate HTTP/1.1\r\nHost: x\r\n")
            except OSError:  # over the cap: closed at once
                break
            held.append(sock)
        alive = []
        for sock in held:
            try:
                sock.sendall(b"X-Slow: 1\r\n")
                alive.append(sock)
            except OSError:
                sock.close()
        held = alive
        stop.wait(2.0)
    for sock in held:
        sock.close()


def plain_pod(namespace: str, name: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace},
            "spec": {"containers": [{"name": "app", "image": "alpine"}]}}  # fmt: skip


@pytest.mark.xfail(strict=True, raises=AssertionError, reason="BREAK: unauthenticated slow connections take all "
                   f"{DEFAULT.max_connections} slots; the API server's calls fail and every covered request is "
                   "denied")  # fmt: skip
def test_a_compliant_pod_is_still_admitted_while_strangers_hold_connections_to_the_webhook(
    start_hook, namespace: str
) -> None:  # fmt: skip
    hook = start_hook(Judgement(PolicySet(()), DenyLevel.LOW, "abc123"), pod_security=pod_security_seam(),
                      always=frozenset({"Pod", "Namespace"}), settings=DEFAULT)  # fmt: skip
    label(hook.raw, namespace, {"pod-security.kubernetes.io/enforce": "baseline"})
    bind_user(hook.cluster.api(), namespace, "alice-edit", "ClusterRole", "edit")
    alice = RawApi(hook.cluster.api("dev-alice"))
    pods = f"/api/v1/namespaces/{namespace}/pods"
    eventually(lambda: alice.request("POST", pods, body=hack_a_node_pod(namespace), query={"dryRun": "All"})[0]
               == 403, timeout=20)  # fmt: skip
    assert alice.request("POST", pods, body=plain_pod(namespace, "before"), query={"dryRun": "All"})[0] == 201
    assert hook.admission is not None
    port = hook.admission.server.server_port
    stop = threading.Event()
    attacker = threading.Thread(target=hold_slots, args=(port, stop), daemon=True)
    attacker.start()
    answers: list[tuple[int, str]] = []
    try:
        time.sleep(DEFAULT.idle + 2)  # the API server's kept-alive connections time out; it must open new ones
        for attempt in range(5):
            status, answer = alice.request("POST", pods, body=plain_pod(namespace, f"during-{attempt}"),
                                           query={"dryRun": "All"})  # fmt: skip
            answers.append((status, str(answer.get("message", ""))[:200]))
            time.sleep(0.5)
    finally:
        stop.set()
        attacker.join(timeout=10)
    assert all(status == 201 for status, _ in answers), answers
