"""Loopback ports: finding free ones and telling the user which are taken."""

from __future__ import annotations

import random
import socket
import time
from pathlib import Path

from gitopsguard.errors import PortInUseError

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A free loopback port below the kernel's ephemeral range.

    Ports from the ephemeral range (what binding port 0 hands out) are also the local ports of outgoing
    connections, so a component restarted on its recorded port could find one of them sitting there.
    """
    low = _ephemeral_range()[0]
    for _ in range(200):
        port = random.randint(min(10000, low - 1), low - 1)  # noqa: S311 (not security-relevant)
        if is_port_free(port):
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:  # a crowded machine: take any
        sock.bind((LOOPBACK, 0))
        any_port: int = sock.getsockname()[1]
        return any_port


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


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


def require_free(port: int, purpose: str, grace: float = 0.0) -> None:
    """PortInUseError unless ``port`` is free, or frees up within ``grace`` seconds (a process that was
    just killed closes its sockets a moment after it stops showing in /proc)."""
    deadline = time.monotonic() + grace
    while not is_port_free(port) and time.monotonic() < deadline:
        time.sleep(0.1)
    if not is_port_free(port):
        raise PortInUseError(
            f"{LOOPBACK}:{port} ({purpose}) is already in use by another process; "
            f"find it with `ss -ltnp 'sport = :{port}'` and stop it, or pick another port "
            "(`gitopsguard dev-cluster up --port N`)"
        )
