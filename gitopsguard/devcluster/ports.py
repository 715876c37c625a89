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
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
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
