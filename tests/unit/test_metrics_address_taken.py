"""A health and metrics address that is already taken stops the controller with what to do, not a traceback."""

from __future__ import annotations

import socket

import click
import pytest

from gitopsguard.commands.run_loop import serve_health
from gitopsguard.notify.health import Health
from gitopsguard.notify.metrics import Metrics


def test_a_taken_metrics_address_is_refused_with_the_address_and_what_to_do() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(click.UsageError, match=rf"--metrics-address 127\.0\.0\.1:{port}: cannot listen there"):
            serve_health(f"127.0.0.1:{port}", Metrics(), Health())
