"""Who may hold a connection to the webhook: only a peer that finished its TLS handshake in time and, when the
operator gave a client CA (``gitopsguard run --admission-client-ca``), showed a certificate that CA signed,
with an allowed name when names are given. The API server is that peer (its ``--admission-control-config-file``).

A connection still in its handshake is unauthenticated, so it never takes one of the server's slots: it is
counted here instead, cut at its deadline, and the oldest one is cut when a new connection finds the
handshakes at their cap. A stranger opening connections and saying nothing therefore delays nobody: a real
handshake (a few milliseconds) is only cut if ``cap`` newer connections arrive before it ends.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

from gitopsguard.errors import AdmissionError


def require_client_certificates(context: ssl.SSLContext, client_ca: str) -> ssl.SSLContext:
    """``context`` asking every client for a certificate ``client_ca`` (PEM) signed; unchanged without one."""
    if client_ca:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cadata=client_ca)
    return context


def read_client_ca(path: Path) -> str:
    """The PEM CA certificate(s) in ``path``, checked to load; AdmissionError saying what to give instead."""
    try:
        pem = path.read_text(encoding="ascii")
        ssl.create_default_context(cadata=pem)  # raises when it holds no certificate
    except (OSError, UnicodeDecodeError, ValueError, ssl.SSLError) as error:
        raise AdmissionError(
            f"{path}: --admission-client-ca: not a readable PEM CA certificate ({error}); "
            "give the CA that signed the API server's client certificate for webhooks"
        ) from error
    if "PRIVATE KEY" in pem:  # a key here is a mistake that would put it where it is read by more than us
        raise AdmissionError(f"{path}: --admission-client-ca holds a private key; give the CA certificate alone")
    return pem


def peer_names(certificate: dict[str, Any]) -> frozenset[str]:
    """The common names and DNS subject alternative names of a verified peer certificate (``getpeercert()``)."""
    subject = certificate.get("subject") or ()
    common = {value for rdn in subject for key, value in rdn if key == "commonName"}
    dns = {value for key, value in certificate.get("subjectAltName") or () if key == "DNS"}
    return frozenset(common | dns)


def peer_allowed(connection: ssl.SSLSocket, client_ca: str, names: frozenset[str]) -> bool:
    """Whether this handshaken connection may be served: always without a client CA (as before it existed);
    with one, the certificate was verified in the handshake, and one of its names must be allowed if any are."""
    if not client_ca or not names:
        return True
    return bool(peer_names(connection.getpeercert() or {}) & names)


class Handshakes:
    """Connections in their TLS handshake: at most ``cap``, each for at most ``deadline`` seconds."""

    def __init__(self, cap: int, deadline: float) -> None:
        self._cap, self._deadline = cap, deadline
        self._pending: OrderedDict[int, tuple[float, socket.socket]] = OrderedDict()
        self._lock = threading.Lock()
        self.cut = 0  # handshakes cut for their deadline or to make room (a count for tests and metrics)

    def begin(self, connection: socket.socket) -> None:
        """Count ``connection`` in (the accept thread), cutting the oldest one when at the cap."""
        with self._lock:
            while len(self._pending) >= self._cap:
                self._cut(self._pending.popitem(last=False)[1][1])
            self._pending[id(connection)] = (time.monotonic() + self._deadline, connection)

    def end(self, connection: socket.socket) -> None:
        """Its handshake is over (done or failed): it is no longer ours to cut. Before it is closed: a cut
        happens under the lock, so it never reaches a descriptor the system has given to someone else."""
        with self._lock:
            self._pending.pop(id(connection), None)

    def reap(self) -> None:
        """Cut every handshake past its deadline (a client trickling its hello a byte at a time too)."""
        now = time.monotonic()
        with self._lock:
            late = [key for key, (deadline, _) in self._pending.items() if deadline <= now]
            for key in late:
                self._cut(self._pending.pop(key)[1])

    def __len__(self) -> int:
        return len(self._pending)

    def _cut(self, connection: socket.socket) -> None:
        self.cut += 1
        # the plain socket's shutdown: it wakes the handshake blocked in another thread, which then fails
        with contextlib.suppress(OSError):
            socket.socket.shutdown(connection, socket.SHUT_RDWR)
