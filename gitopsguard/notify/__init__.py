"""Telling people: notices built from what the stages return, delivered to Slack."""

from __future__ import annotations

from collections.abc import Callable

from gitopsguard.grants.keeper import Transition
from gitopsguard.notify.notices import Notice, from_announcements, from_result, from_transitions
from gitopsguard.reconcile import ReconcileResult
from gitopsguard.scan.judged import Announcement

__all__ = ["Notice", "Notifications"]


class Notifications:
    """The one place the loop, the live scan and the grant keeper hand their news to."""

    def __init__(self, send: Callable[[list[Notice]], None]) -> None:
        self._send = send

    def on_result(self, result: ReconcileResult) -> None:
        self._send(from_result(result))

    def on_announcements(self, announcements: list[Announcement]) -> None:
        self._send(from_announcements(announcements))

    def on_transitions(self, transitions: list[Transition]) -> None:
        self._send(from_transitions(transitions))

    def send(self, notices: list[Notice]) -> None:
        """Notices made elsewhere (admission builds its own)."""
        self._send(notices)
