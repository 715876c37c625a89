"""A test session killed with SIGTERM still tears down its fixtures (and so stops its control planes)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

CONFTEST = """
import os, subprocess
from pathlib import Path
import pytest
from tests.sigterm import sigterm_as_interrupt

@pytest.fixture(scope="session")
def server(tmp_path_factory):
    # like a control-plane component: a child in a session of its own, which a signal to pytest misses
    child = subprocess.Popen(["sleep", "300"], start_new_session=True)
    Path(os.environ["CHILD_PID"]).write_text(str(child.pid))
    with {guard}:
        try:
            yield child
        finally:
            child.kill()
            child.wait()
            Path(os.environ["TORN_DOWN"]).write_text("yes")
"""

TEST = """
import os, time
from pathlib import Path

def test_runs_until_killed(server):
    Path(os.environ["READY"]).write_text("yes")
    time.sleep(120)
"""


def _session_killed_by_sigterm(tmp_path: Path, guard: str) -> tuple[bool, int]:
    """Run a session whose fixture holds a child process, SIGTERM it mid-test; (torn down?, child pid)."""
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "conftest.py").write_text(textwrap.dedent(CONFTEST.format(guard=guard)))
    (suite / "test_long.py").write_text(textwrap.dedent(TEST))
    marks = {name: tmp_path / name.lower() for name in ("CHILD_PID", "TORN_DOWN", "READY")}
    env = os.environ | {name: str(path) for name, path in marks.items()} | {"PYTHONPATH": str(REPO)}
    session = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(suite), str(suite)],
        cwd=suite, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not marks["READY"].exists():
            assert time.monotonic() < deadline, "the inner test session never started its test"
            time.sleep(0.05)
        session.send_signal(signal.SIGTERM)
        session.wait(timeout=60)
    finally:
        session.kill()
    return marks["TORN_DOWN"].exists(), int(marks["CHILD_PID"].read_text())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"


def test_sigterm_tears_down_session_fixtures_and_stops_their_children(tmp_path: Path) -> None:
    torn_down, child = _session_killed_by_sigterm(tmp_path, "sigterm_as_interrupt()")
    assert torn_down
    assert not _alive(child)


def test_without_the_guard_sigterm_leaves_the_child_running(tmp_path: Path) -> None:
    """The harness itself can tell the difference: unguarded, the child outlives the session."""
    torn_down, child = _session_killed_by_sigterm(tmp_path, "open(os.devnull)")
    try:
        assert not torn_down
        assert _alive(child)
    finally:
        os.kill(child, signal.SIGKILL)
