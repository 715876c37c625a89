"""Ports that are taken are refused with advice; credentials are private and round-trip."""

from __future__ import annotations

import base64
import socket
import stat
import threading
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from gitopsguard.cli import main
from gitopsguard.devcluster.kubeconfig import render_kubeconfig
from gitopsguard.devcluster.pki import new_users, read_tokens_file, write_tokens_file
from gitopsguard.devcluster.ports import free_port, is_port_free, require_free
from gitopsguard.errors import PortInUseError


@pytest.fixture
def taken_port() -> object:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_taken_port_is_refused_with_how_to_find_the_owner(taken_port: int) -> None:
    assert not is_port_free(taken_port)
    with pytest.raises(PortInUseError, match=rf"127\.0\.0\.1:{taken_port} .*ss -ltnp"):
        require_free(taken_port, "kube-apiserver")


def test_free_port_is_free() -> None:
    assert is_port_free(free_port())


def test_up_on_a_taken_port_exits_2_with_a_message_and_starts_nothing(taken_port: int, tmp_path: Path) -> None:
    state = tmp_path / "state"
    result = CliRunner().invoke(
        main,
        ["dev-cluster", "--state-dir", str(state), "--cache-dir", str(tmp_path / "c"), "up", "--port", str(taken_port)],
    )
    assert result.exit_code == 2
    assert f"127.0.0.1:{taken_port} (kube-apiserver) is already in use" in result.output
    assert "Traceback" not in result.output
    assert not state.exists()


def test_tokens_file_round_trips_and_is_private(tmp_path: Path) -> None:
    users = new_users()
    path = tmp_path / "tokens.csv"
    write_tokens_file(path, users)
    assert read_tokens_file(path) == users
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_only_admin_is_in_system_masters() -> None:
    masters = [user.name for user in new_users() if "system:masters" in user.groups]
    assert masters == ["admin"]


def test_kubeconfig_has_a_context_per_user_and_embeds_the_ca() -> None:
    users = new_users()
    config = yaml.safe_load(render_kubeconfig("https://127.0.0.1:1234", b"PEM", users, "dev-admin"))
    assert [c["name"] for c in config["contexts"]] == [f"dev-{u.name}" for u in users]
    assert config["current-context"] == "dev-admin"
    cluster = config["clusters"][0]["cluster"]
    assert base64.b64decode(cluster["certificate-authority-data"]) == b"PEM"
    assert cluster["server"] == "https://127.0.0.1:1234"


def test_free_ports_come_from_below_the_ephemeral_range() -> None:
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    assert all(free_port() < low for _ in range(20))


def test_port_released_within_the_grace_period_is_accepted() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    port = sock.getsockname()[1]
    threading.Timer(0.5, sock.close).start()
    require_free(port, "kube-apiserver", grace=5)  # does not raise: the listener went away in time
    assert is_port_free(port)
