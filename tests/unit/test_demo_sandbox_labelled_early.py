"""`make demo`'s hack-a-node step is judged by namespace sandbox's baseline label, as the story says (no cluster).

The webhooks read a namespace's labels at most every NAMESPACE_TTL seconds (admission/serve.py). The story used
to label the sandbox and run the Pod at once: on a fresh cluster a webhook that had read the namespace before
its label judged by the fail-closed default (restricted), and kubectl's refusal listed restricted's findings
too. The story now labels it right after the Units are Ready, and the step waits out what is left of the TTL."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any, cast

import pytest

from gitopsguard.admission.serve import NAMESPACE_TTL
from gitopsguard.commands import demo_incluster_story as story
from gitopsguard.commands.demo_incluster import DemoInstall

DEMO = cast(DemoInstall, SimpleNamespace())


class StoppedHereError(Exception):
    pass


def test_the_sandbox_is_labelled_before_the_storys_first_step_and_the_hack_a_node_step_is_told_when(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    done: list[str] = []

    def step(name: str) -> Any:
        return lambda _demo, **kw: done.append(f"{name}{kw}" if kw else name)

    monkeypatch.setattr(story, "show_units_ready", lambda _: True)

    def label(_demo: DemoInstall, *, say_why: bool = True) -> float:
        done.append(f"label, say_why={say_why}")
        return 12.5

    monkeypatch.setattr(story, "label_sandbox", label)
    monkeypatch.setattr(story, "show_rollout", lambda _: True)
    for name in ("show_drift_repair", "show_review", "show_confinement", "show_policy_gate", "show_suspend",
                 "show_hack_a_node", "show_hand_made", "show_grant", "show_handover"):  # fmt: skip
        monkeypatch.setattr(story, name, step(name))
    assert story.tell(DEMO)
    assert done[:2] == ["label, say_why=False", "show_drift_repair"]  # a failure here is told at the step
    assert "show_hack_a_node{'labelled': 12.5}" in done


def test_the_hack_a_node_step_waits_until_the_webhooks_can_have_read_the_label(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)  # the story's own module's: the same one

    def stop(_text: str) -> None:
        raise StoppedHereError

    monkeypatch.setattr(story, "echo_step", stop)
    with pytest.raises(StoppedHereError):
        story.show_hack_a_node(DEMO, labelled=time.monotonic())
    assert NAMESPACE_TTL - 0.5 < slept[0] <= NAMESPACE_TTL
    slept.clear()
    with pytest.raises(StoppedHereError):
        story.show_hack_a_node(DEMO, labelled=time.monotonic() - 60)  # labelled a minute ago: no wait
    assert slept == [0.0]


def test_a_sandbox_not_labelled_early_is_labelled_at_the_step_and_then_waits_out_the_ttl(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`make demo` again after a change: the early label's webhook call reached an earlier demo's replica on its
    way out (connection reset), and the admission step was skipped; by the step both new replicas are Ready."""
    labelled: list[bool] = []
    slept: list[float] = []

    def label(_demo: DemoInstall, *, say_why: bool = True) -> float:
        labelled.append(say_why)
        return time.monotonic()

    def stop(_text: str) -> None:
        raise StoppedHereError

    monkeypatch.setattr(story, "label_sandbox", label)
    monkeypatch.setattr(time, "sleep", slept.append)
    monkeypatch.setattr(story, "echo_step", stop)
    with pytest.raises(StoppedHereError):
        story.show_hack_a_node(DEMO, labelled=None)
    assert labelled == [True]  # told why, should it fail again
    assert NAMESPACE_TTL - 0.5 < slept[0] <= NAMESPACE_TTL


def test_a_sandbox_that_cannot_be_labelled_at_all_skips_the_step_and_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(story, "label_sandbox", lambda _demo, **_: None)
    story.show_hack_a_node(DEMO, labelled=None)
    assert "skipped the admission step: namespace sandbox is not ready" in capsys.readouterr().out
