"""A TCP proxy on this machine in front of the real API server that can stall its open connections.

TLS passes through untouched: the proxy listens on the API server's own address (127.0.0.1, or the node's
bridge address 10.244.0.1 on a dev cluster with a node), which its certificate names, whatever the port.
``stall()`` stops forwarding the server's bytes on every connection open at that moment, without closing anything: to
the client the stream just goes silent, as behind a dead peer or a wedged middlebox. Connections opened
afterwards flow normally.
"""

from __future__ import annotations

import copy
import socket
import threading
from urllib.parse import urlsplit

from kubernetes import client


class StallProxy:
    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self._target = (parts.hostname or "127.0.0.1", parts.port or 443)
        # the certificate of a dev cluster with a node names its bridge address, not 127.0.0.1: a proxy on
        # 127.0.0.1 failed every TLS handshake there, so the watch never started (issue 17's skipped test)
        self._listener = socket.create_server((self._target[0], 0))
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._open: list[tuple[socket.socket, socket.socket, threading.Event]] = []
        self.connections = 0
        threading.Thread(target=self._accept, name="stall-proxy", daemon=True).start()

    def api(self, api: client.ApiClient) -> client.ApiClient:
        """A client like ``api`` that goes through this proxy."""
        configuration = copy.copy(api.configuration)
        configuration.host = f"https://{self._target[0]}:{self.port}"
        return client.ApiClient(configuration)

    def stall(self) -> None:
        with self._lock:
            for _, _, stalled in self._open:
                stalled.set()

    def close(self) -> None:
        self._listener.close()
        with self._lock:
            for near, far, _ in self._open:
                near.close()
                far.close()

    def _accept(self) -> None:
        while True:
            try:
                near, _ = self._listener.accept()
            except OSError:
                return
            far = socket.create_connection(self._target)
            stalled = threading.Event()
            with self._lock:
                self._open.append((near, far, stalled))
                self.connections += 1
            threading.Thread(target=_pump, args=(near, far, None), daemon=True).start()
            threading.Thread(target=_pump, args=(far, near, stalled), daemon=True).start()


def _pump(source: socket.socket, sink: socket.socket, stalled: threading.Event | None) -> None:
    try:
        while True:
            if stalled is not None and stalled.is_set():
                return  # stop reading: the peer's bytes (and its close) never reach the client
            data = source.recv(65536)
            if stalled is not None and stalled.is_set():
                return
            if not data:
                sink.shutdown(socket.SHUT_WR)
                return
            sink.sendall(data)
    except OSError:
        return
