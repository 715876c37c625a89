"""`make demo-down` ends the demo's git daemon by the pid in the demo's state directory: only if that pid is
still a git daemon. A recycled pid, or a pid file edited to name another process, is left alone."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gitopsguard.commands.demo_incluster import PID_FILE, _read_pid_file
from gitopsguard.devcluster.install import stop_git_daemon


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def test_a_git_daemon_is_ended_and_no_longer_listens(tmp_path: Path) -> None:
    port = free_port()
    daemon = subprocess.Popen(["git", "daemon", "--listen=127.0.0.1", f"--port={port}", "--export-all",
                               f"--base-path={tmp_path}", str(tmp_path)], stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 10
    while not listening(port) and time.monotonic() < deadline:
        time.sleep(0.05)
    stop_git_daemon(daemon.pid)
    assert daemon.wait(timeout=10) is not None
    assert not listening(port)  # no child of it left serving


def test_a_pid_that_is_not_a_git_daemon_is_left_alone() -> None:
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)  # git daemon"])
    try:
        stop_git_daemon(other.pid)
        time.sleep(0.2)
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


def test_a_pid_of_no_process_is_nothing_to_do() -> None:
    stop_git_daemon(2**22 + 12345)  # above the kernel's pid_max: never a process


@pytest.mark.parametrize("text", ["", "1 9418", "abc", "12 0", "12 70000", "12", "12 9418 7", "-5 9418", "١٢ 9418x"])
def test_a_pid_file_that_is_not_a_pid_and_a_port_names_nothing(tmp_path: Path, text: str) -> None:
    path = tmp_path / PID_FILE
    path.write_text(text)
    assert _read_pid_file(path) == (0, 0)


def test_the_pid_file_of_a_running_demo_names_its_daemon(tmp_path: Path) -> None:
    path = tmp_path / PID_FILE
    path.write_text("4242 9418\n")
    assert _read_pid_file(path) == (4242, 9418)
    assert _read_pid_file(tmp_path / "absent") == (0, 0)
