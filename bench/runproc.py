"""`gitopsguard run` as a child process, for the benches that measure it from outside (tenant_flood.py,
bad_commit.py): its output lines with the moment each arrived, its peak RSS from /proc, and a clean stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

from gitopsguard.cluster.rest import RawApi

CONTROLLER_NAMESPACE = "gitopsguard-system"


class RunProcess:
    """``python -m gitopsguard run ARGS`` with its stdout and stderr read line by line (time.monotonic())."""

    def __init__(self, args: Sequence[str], *, env: dict[str, str] | None = None, log: Path | None = None) -> None:
        self.lines: list[tuple[float, str, str]] = []  # (when, "out" or "err", line)
        self._lock = threading.Lock()
        self._log = log.open("a") if log else None
        self.child = subprocess.Popen(
            [sys.executable, "-m", "gitopsguard", "run", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        for name, stream in (("out", self.child.stdout), ("err", self.child.stderr)):
            threading.Thread(target=self._read, args=(name, stream), daemon=True).start()

    def _read(self, name: str, stream: IO[str] | None) -> None:
        for line in stream or ():
            with self._lock:
                self.lines.append((time.monotonic(), name, line.rstrip("\n")))
                if self._log:
                    self._log.write(f"{name}: {line}")
                    self._log.flush()

    def first_line(self, match: Callable[[str], bool], since: float = 0.0) -> float | None:
        """When the first output line after ``since`` that ``match``es arrived, or None."""
        with self._lock:
            return next((at for at, _, line in self.lines if at >= since and match(line)), None)

    def alive(self) -> bool:
        return self.child.poll() is None

    def status_mb(self, field: str = "VmHWM") -> float | None:
        """A memory figure of the run process from /proc/<pid>/status (VmHWM: its peak RSS), in MB."""
        try:
            text = Path(f"/proc/{self.child.pid}/status").read_text()
        except OSError:
            return None
        for line in text.splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024  # kB
        return None

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout``; its exit code."""
        if self.alive():
            self.child.send_signal(signal.SIGTERM)
            try:
                self.child.wait(timeout)
            except subprocess.TimeoutExpired:
                self.child.kill()
                self.child.wait(10)
        if self._log:
            self._log.close()
        return self.child.returncode

    def tail(self, n: int = 15) -> str:
        with self._lock:
            return "\n".join(f"  {name}: {line}" for _, name, line in self.lines[-n:])


def delete_configmap(raw: RawApi, name: str, namespace: str = CONTROLLER_NAMESPACE) -> None:
    raw.request("DELETE", f"/api/v1/namespaces/{namespace}/configmaps/{name}")


def delete_namespaces(raw: RawApi, names: Sequence[str]) -> None:
    for name in names:
        raw.request("DELETE", f"/api/v1/namespaces/{name}")


def wait_for_default_accounts(raw: RawApi, namespaces: Sequence[str], timeout: float = 60.0) -> None:
    """Pods need their namespace's default ServiceAccount, which the controller-manager adds."""
    deadline = time.monotonic() + timeout
    for ns in namespaces:
        while raw.request("GET", f"/api/v1/namespaces/{ns}/serviceaccounts/default")[0] != 200:
            if time.monotonic() > deadline:
                raise SystemExit(f"no default ServiceAccount in {ns} after {timeout:.0f} s")
            time.sleep(0.2)


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, round(fraction * len(ordered)) - 1)]


def verdict(met: bool) -> str:
    return "met" if met else "NOT met"
