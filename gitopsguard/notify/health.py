"""What ``/healthz`` and ``/readyz`` answer, from the moment ``gitopsguard run`` starts, on every replica.

A liveness probe restarts a container whose ``/healthz`` fails or does not answer, so the endpoints must serve
before anything that can wait: connecting, the admission certificates, and above all the leader election,
where a standby waits for as long as another replica leads. ``/healthz`` is about the process alone: it
fails once a background thread has died (``lifeline``), never because the API server is away or another
replica leads (a restart would cure neither). ``/readyz`` says whether this replica does its work: the leader
when its loop has made a recent attempt and the API server answers; a standby when it serves admission (every
replica does, so the API server may call it); otherwise a standby is live and not ready.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from enum import StrEnum

from gitopsguard.notify.metrics import process_alive

Check = Callable[[], tuple[bool, str]]


class Role(StrEnum):
    STARTING = "starting"  # connecting, starting admission: no role yet
    STANDBY = "standby"  # waiting for the lease another replica holds
    LEADING = "leading"  # running the loop (with or without leader election)


class Health:
    """The replica's state as the probes see it; the parts of ``run`` tell it what they reached."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._role = Role.STARTING
        self._unit = ""
        self._loop: Check = lambda: (False, "the loop has not started")
        self._admission: Callable[[], bool] | None = None
        self._judging: Callable[[], bool] = lambda: True

    @property
    def role(self) -> Role:
        return self._role

    def serving_admission(self, serving: Callable[[], bool], judging: Callable[[], bool] = lambda: True) -> None:
        """Admission is served here; ``serving`` says whether it still is (its server thread runs), ``judging``
        whether it has read the policies of an applied revision (before that it denies every request)."""
        with self._lock:
            self._admission, self._judging = serving, judging

    def standby(self, unit: str) -> None:
        with self._lock:
            self._role, self._unit = Role.STANDBY, unit

    def leading(self, unit: str, loop: Check) -> None:
        """The loop runs from now on; ``loop`` says whether it works (``metrics.readiness``)."""
        with self._lock:
            self._role, self._unit, self._loop = Role.LEADING, unit, loop

    def live(self) -> tuple[bool, str]:
        alive, why = process_alive()
        return (True, f"ok ({self._role.value})") if alive else (False, why)

    def ready(self) -> tuple[bool, str]:
        alive, why = self.live()
        if not alive:
            return False, why
        with self._lock:
            role, unit, loop, admission, judging = self._role, self._unit, self._loop, self._admission, self._judging
        if role is Role.LEADING:
            ok, why = loop()
            doing = f"leading unit {unit}: {why}"
        else:
            ok, doing = False, f"standby for unit {unit}, waiting for its lease" if role is Role.STANDBY else "starting"
        if admission is None or not admission():
            return ok, doing
        # The webhook's Service sends only to ready replicas. The leader takes admission requests as soon as it
        # serves them, whatever its loop does: its own first apply goes through its webhook. Another replica
        # only once it judges by an applied revision: before that it would deny what the leader admits.
        if role is Role.LEADING or judging():
            return True, f"{doing}; serving admission"
        return False, f"{doing}; serving admission, not judging yet (no applied revision's policies read)"
