"""Server CPU per TLS handshake of the admission server's context, with OpenSSL's default TLS 1.3 session
tickets (2) and with none: the API server's webhook client never resumes a session (client-go sets no
``ClientSessionCache``), so tickets would be wasted work if they cost anything.

    PYTHONPATH=. .venv/bin/python bench/admission_tls_tickets.py [--handshakes 400]
"""

from __future__ import annotations

import argparse
import socket
import ssl
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def server_cpu_per_handshake(server: ssl.SSLContext, client: ssl.SSLContext, handshakes: int) -> float:
    """Seconds of the serving thread's CPU per connection (handshake, one byte each way, close)."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    spent: list[float] = []

    def serve() -> None:
        for _ in range(handshakes):
            connection, _ = listener.accept()
            started = time.thread_time()
            tls = server.wrap_socket(connection, server_side=True)
            tls.recv(1)
            tls.sendall(b"y")
            tls.close()
            spent.append(time.thread_time() - started)

    thread = threading.Thread(target=serve)
    thread.start()
    for _ in range(handshakes):
        connection = client.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="127.0.0.1")
        connection.sendall(b"x")
        connection.recv(1)
        connection.close()
    thread.join()
    listener.close()
    return sum(spent) / handshakes


def main() -> None:
    from gitopsguard.admission.certs import issue

    parser = argparse.ArgumentParser()
    parser.add_argument("--handshakes", type=int, default=400)
    args = parser.parse_args()
    certs = issue(["127.0.0.1"], datetime.now(UTC))
    client = ssl.create_default_context(cadata=certs.bundle.decode())
    for tickets in (2, 0, 2, 0):  # twice each, interleaved: the machine is shared
        server = certs.context()
        server.num_tickets = tickets
        cost = server_cpu_per_handshake(server, client, args.handshakes)
        print(f"{tickets} session tickets: {cost * 1000:.3f} ms of server CPU per handshake", flush=True)


if __name__ == "__main__":
    main()
