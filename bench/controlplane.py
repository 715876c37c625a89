"""The local control plane's CPU, read from /proc: to wait until it is idle before a timed run, and to
say where a run's CPU went (API server, etcd, controller-manager, and the client)."""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass
from pathlib import Path

from gitopsguard.devcluster import StateLayout

COMPONENTS = ("kube-apiserver", "etcd", "kube-controller-manager")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _client_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@dataclass(frozen=True)
class Usage:
    wall: float
    cpu: dict[str, float]  # component (or "client": this process and its children) -> CPU seconds

    def __str__(self) -> str:
        parts = ", ".join(f"{name} {seconds:.1f}" for name, seconds in self.cpu.items())
        return f"{self.wall:.2f} s (CPU-s: {parts})"


class ControlPlane:
    def __init__(self, layout: StateLayout | None = None) -> None:
        layout = layout or StateLayout.default()
        self._pids = {name: int(layout.pid_file(name).read_text().split()[0]) for name in COMPONENTS}

    def _sample(self) -> dict[str, float]:
        return {name: _cpu_seconds(pid) for name, pid in self._pids.items()} | {"client": _client_seconds()}

    def settle(self, idle: float = 0.10, window: float = 2.0, longest: float = 300.0) -> float:
        """Wait until the control plane uses less than ``idle`` of one core over ``window`` seconds (the
        controller-manager finishing what the last run started); returns how long that took."""
        start = time.monotonic()
        while time.monotonic() - start < longest:
            before = self._sample()
            time.sleep(window)
            after = self._sample()
            if sum(after[n] - before[n] for n in COMPONENTS) / window < idle:
                break
        return time.monotonic() - start

    def measure(self, work: object) -> tuple[Usage, object]:
        before, start = self._sample(), time.perf_counter()
        result = work()  # type: ignore[operator]
        wall, after = time.perf_counter() - start, self._sample()
        return Usage(wall, {name: after[name] - before[name] for name in before}), result
