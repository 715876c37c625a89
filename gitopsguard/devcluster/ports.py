"""Loopback ports: finding free ones and telling the user which are taken."""

from __future__ import annotations

import socket

from gitopsguard.errors import PortInUseError

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A port the kernel just handed out on loopback; it is free now, though not reserved."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def is_port_free(port: int) -> bool:
    """Whether a server could listen on ``port`` now. Like etcd and kube-apiserver, bind with SO_REUSEADDR:
    connections in TIME_WAIT after a crash do not block a restart, only another listener does."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
        return True


def require_free(port: int, purpose: str) -> None:
    if not is_port_free(port):
        raise PortInUseError(
            f"{LOOPBACK}:{port} ({purpose}) is already in use by another process; "
            f"find it with `ss -ltnp 'sport = :{port}'` and stop it, or pick another port "
            "(`gitopsguard dev-cluster up --port N`)"
        )
