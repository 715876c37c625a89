"""Attack: anyone who reaches the webhook's port tries to take every connection slot, so that the API server,
finding no slot, fails every covered request closed (failurePolicy Fail): no tenant could create a Pod.

The server caps connections (admission/server.py, Settings.max_connections = 256). A slot is taken only by a
peer whose handshake showed a certificate from ``--admission-client-ca`` (the dev cluster's API server does),
handshakes are deadlined and counted apart (admission/peers.py), and a request's line, headers and body are
read against one deadline: 256 TLS connections trickling headers get no slot, and the API server's calls
pass. In a cluster the attacker is any Pod (the Service `gitopsguard-webhook` is reachable cluster-wide
unless a NetworkPolicy says otherwise).

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
from tests.integration.conftest import LiveCluster, bind_user
from tests.integration.test_admission import client_ca
from tests.waiting import eventually

from .conftest import Starter, label

pytestmark = pytest.mark.integration
HOLD = DEFAULT.max_connections + 64


def hold_slots(port: int, stop: threading.Event) -> None:
    """Every 2 s, bring the connections held up to HOLD: TLS ones that finish their handshake (as far as the
    client can tell) and then say nothing, so that each waits out the server's idle timeout (95 s), and as
    many plain TCP ones that never start their handshake; those the server closed are opened again."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # a stranger trusts nothing either way
    held: list[ssl.SSLSocket] = []
    silent: list[socket.socket] = []
    while not stop.is_set():
        for _ in range(HOLD - len(held)):
            try:
                raw = socket.create_connection(("127.0.0.1", port), timeout=1)
                silent.append(socket.create_connection(("127.0.0.1", port), timeout=1))
                held.append(context.wrap_socket(raw))
            except OSError:  # refused in the handshake: try the next one
                continue
        held = [sock for sock in held if _still_open(sock)]
        for sock in silent[:-HOLD]:
            sock.close()
        silent = silent[-HOLD:]
        stop.wait(2.0)
    for sock in [*held, *silent]:
        sock.close()


def _still_open(sock: ssl.SSLSocket) -> bool:
    """Whether the server still keeps this connection (nothing to read and no close yet)."""
    sock.setblocking(False)
    try:
        closed = sock.recv(1) == b""
    except (ssl.SSLWantReadError, BlockingIOError):
        return True
    except OSError:
        closed = True
    if closed:
        sock.close()
    return not closed


def plain_pod(namespace: str, name: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace},
            "spec": {"containers": [{"name": "app", "image": "alpine"}]}}  # fmt: skip


def test_a_compliant_pod_is_still_admitted_while_strangers_hold_connections_to_the_webhook(
    start_hook: Starter, namespace: str, dev_cluster: LiveCluster
) -> None:  # fmt: skip
    if not client_ca(dev_cluster):
        pytest.skip("the dev cluster's API server shows webhooks no client certificate (made before it did): "
                    "`gitopsguard dev-cluster down` and `up` make it anew")  # fmt: skip
    hook = start_hook(Judgement(PolicySet(()), DenyLevel.LOW, "abc123"), pod_security=pod_security_seam(),
                      always=frozenset({"Pod", "Namespace"}), settings=DEFAULT)  # fmt: skip
    assert hook.admission is not None
    server = hook.admission.server
    stop = threading.Event()
    # the attack begins before the API server's first call to this webhook: it has no connection to reuse
    attacker = threading.Thread(target=hold_slots, args=(server.server_port, stop), daemon=True)
    attacker.start()
    answers: list[tuple[int, str]] = []
    try:
        eventually(lambda: server.accepted > 2 * HOLD, timeout=30)  # two rounds: every slot tried, twice
        label(hook.raw, namespace, {"pod-security.kubernetes.io/enforce": "baseline"})  # judged by the webhook
        bind_user(hook.cluster.api(), namespace, "alice-edit", "ClusterRole", "edit")
        alice = RawApi(hook.cluster.api("dev-alice"))
        pods = f"/api/v1/namespaces/{namespace}/pods"
        eventually(lambda: alice.request("POST", pods, body=hack_a_node_pod(namespace), query={"dryRun": "All"})[0]
                   == 403, timeout=20)  # fmt: skip
        for attempt in range(5):
            status, answer = alice.request("POST", pods, body=plain_pod(namespace, f"during-{attempt}"),
                                           query={"dryRun": "All"})  # fmt: skip
            answers.append((status, str(answer.get("message", ""))[:200]))
            time.sleep(0.5)
        attacked = server.accepted
    finally:
        stop.set()
        attacker.join(timeout=10)
    assert all(status == 201 for status, _ in answers), answers
    assert attacked > 3 * HOLD  # the attack ran throughout
