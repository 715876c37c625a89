"""Pid files are trusted only while the pid still runs the binary we started."""

from __future__ import annotations

import io
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gitopsguard.devcluster.process import ComponentSpec, is_our_process, read_pid, start, stop
from gitopsguard.devcluster.progress import StagedProgress, heartbeat

SLEEP = shutil.which("sleep") or "/bin/sleep"


@pytest.fixture
def unrelated_process() -> Iterator[subprocess.Popen[bytes]]:
    child = subprocess.Popen([SLEEP, "60"])
    yield child
    child.kill()
    child.wait()


def test_started_component_is_tracked_and_stopped(tmp_path: Path) -> None:
    child = start(ComponentSpec("sleeper", (SLEEP, "60")), tmp_path / "s.pid", tmp_path / "s.log")
    pid = child.pid
    assert read_pid(tmp_path / "s.pid") == pid
    deadline = time.monotonic() + 5
    while not is_our_process(pid, "sleep"):  # until exec, the child's cmdline is still Python's
        assert time.monotonic() < deadline
        time.sleep(0.01)
    stop(pid, "sleep", timeout=5)
    assert not is_our_process(pid, "sleep")
    assert "starting" in (tmp_path / "s.log").read_text()


def test_pid_reused_by_another_program_is_not_ours(unrelated_process: subprocess.Popen[bytes]) -> None:
    assert not is_our_process(unrelated_process.pid, "etcd")


def test_stop_never_signals_a_process_that_is_not_ours(unrelated_process: subprocess.Popen[bytes]) -> None:
    stop(unrelated_process.pid, "etcd", timeout=1)
    assert unrelated_process.poll() is None


def test_dead_pid_is_not_ours(tmp_path: Path) -> None:
    child = subprocess.Popen([SLEEP, "0"])
    child.wait()
    assert not is_our_process(child.pid, "sleep")


def test_unreadable_pid_file_reads_as_none(tmp_path: Path) -> None:
    (tmp_path / "x.pid").write_text("not a number")
    assert read_pid(tmp_path / "x.pid") is None
    assert read_pid(tmp_path / "missing.pid") is None


def test_heartbeat_reports_while_long_work_runs() -> None:
    lines: list[str] = []

    class Collect(io.StringIO):
        def write(self, text: str) -> int:
            lines.append(text)
            return len(text)

    progress = StagedProgress(stream=Collect())
    done = threading.Event()
    with heartbeat(progress, lambda: "still building", every=0.05):
        done.wait(0.3)
    assert sum("still building" in line for line in lines) >= 2
