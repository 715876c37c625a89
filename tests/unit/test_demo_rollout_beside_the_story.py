"""`make demo` tells its story's first steps while the standby becomes Ready (``demo_incluster_rollout.py``):
the steps on the leader alone run before the rollout completes, the steps that need both replicas (every
replica's webhook, the handover) only after it, and a rollout that fails stops the story there, as it failed
the install before. No cluster: the steps are stand-ins that record their order."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import cast

import pytest

from gitopsguard.commands import demo_incluster_story as story
from gitopsguard.commands.demo_incluster import DemoInstall
from gitopsguard.commands.demo_incluster_rollout import Rollout
from gitopsguard.errors import DevClusterError

BEFORE = ("show_drift_repair", "show_review", "show_confinement", "show_policy_gate", "show_suspend")
AFTER = ("show_hack_a_node", "show_hand_made", "show_grant", "show_handover")


def stand_in_steps(monkeypatch: pytest.MonkeyPatch, told: list[str], last_before: threading.Event) -> None:
    def step(name: str, *, then: Callable[[], object] = lambda: None) -> Callable[..., bool]:
        def told_it(_: object, **_settings: object) -> bool:
            told.append(name)
            then()
            return True

        return told_it

    monkeypatch.setattr(story, "show_units_ready", step("show_units_ready"))
    monkeypatch.setattr(story, "label_sandbox", lambda _demo, **_: 0.0)  # no cluster (its own test file)
    for name in (*BEFORE, *AFTER):
        monkeypatch.setattr(story, name, step(name))
    monkeypatch.setattr(story, "show_suspend", step("show_suspend", then=last_before.set))


def demo_with(rollout: Rollout) -> DemoInstall:
    return cast(DemoInstall, SimpleNamespace(rollout=rollout, started=time.monotonic()))


def test_the_leaders_steps_run_while_the_standby_becomes_ready_and_the_others_after_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    told: list[str] = []
    last_before = threading.Event()

    def standby_ready_after_the_leaders_steps() -> None:
        if not last_before.wait(10):  # a story that waited for the rollout first would never get there
            raise DevClusterError("deployment/gitopsguard: the story waited for the rollout before its first steps")
        told.append("rollout")

    stand_in_steps(monkeypatch, told, last_before)
    assert story.tell(demo_with(Rollout(standby_ready_after_the_leaders_steps).start())) is True
    assert told == ["show_units_ready", *BEFORE, "rollout", *AFTER]
    assert "Both gitopsguard Pods are Ready: the rollout completed" in capsys.readouterr().out


def test_a_failed_rollout_stops_the_story_before_the_steps_that_need_both_replicas(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    told: list[str] = []

    def timed_out() -> None:
        raise DevClusterError("kubectl rollout status: error: timed out waiting for the condition")

    stand_in_steps(monkeypatch, told, threading.Event())
    assert story.tell(demo_with(Rollout(timed_out).start())) is False
    assert told == ["show_units_ready", *BEFORE]
    said = capsys.readouterr().out
    assert "The rollout did not complete, so the story stops here" in said and "timed out" in said


def test_a_bug_in_the_rollouts_thread_reaches_the_story_rather_than_passing_for_done() -> None:
    def broken() -> None:
        raise KeyError("status")

    with pytest.raises(KeyError):
        Rollout(broken).start().wait()


def test_a_completed_rollout_says_when() -> None:
    before = time.monotonic()
    done_at = Rollout(lambda: None).start().wait()
    assert before <= done_at <= time.monotonic()
