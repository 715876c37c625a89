"""Starting, finding and stopping the control-plane processes through pid files.

A pid file is trusted only while ``/proc/<pid>/cmdline`` still names the binary we started: a pid left
behind after a reboot or a crash, and since reused by some other program, is reported stale and that
other program is never signalled.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ComponentSpec:
    name: str
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()  # set on top of ours

    @property
    def binary_name(self) -> str:
        return Path(self.argv[0]).name


def start(spec: ComponentSpec, pid_file: Path, log_file: Path) -> subprocess.Popen[bytes]:
    """Start ``spec`` detached from our session (it outlives the CLI) and record its pid.

    Judge a process just started by the returned handle, not by ``is_our_process``: until the child has
    called exec, its ``/proc/<pid>/cmdline`` still shows Python.
    """
    log_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        log.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S')} starting {' '.join(spec.argv)}\n".encode())
        log.flush()
        child = subprocess.Popen(
            list(spec.argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **dict(spec.env)} if spec.env else None,
        )
    partial = pid_file.with_name(pid_file.name + ".partial")
    partial.write_text(f"{child.pid}\n")
    os.replace(partial, pid_file)
    return child


def read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


def is_our_process(pid: int, binary_name: str) -> bool:
    """True when ``pid`` is alive (not a zombie) and runs ``binary_name``."""
    try:
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0]
    except OSError:
        return False
    return bool(argv0) and Path(argv0.decode(errors="replace")).name == binary_name


def stop(pid: int, binary_name: str, timeout: float = 15.0) -> None:
    """SIGTERM, then SIGKILL after ``timeout``; only ever signals a process that is still ours."""
    if not is_our_process(pid, binary_name):
        return
    _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(pid)
        if not is_our_process(pid, binary_name):
            return
        time.sleep(0.1)
    _signal(pid, signal.SIGKILL)
    while is_our_process(pid, binary_name):
        _reap(pid)
        time.sleep(0.05)


def stop_child(child: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """Stop a process we started in this run, through its handle (no pid-reuse question arises)."""
    if child.poll() is not None:
        return
    child.terminate()
    try:
        child.wait(timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def _signal(pid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def _reap(pid: int) -> None:
    """Collect the exit status when the process is our own child, so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def log_tail(log_file: Path, lines: int = 12) -> str:
    try:
        return "\n".join(log_file.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log written)"
