"""`make demo`'s long waits say what they wait for (no cluster): the install's wait for the controller's Pods and
the story's for the three Units were silent for up to 180 s each, so a newcomer on a loaded machine saw a
stamp and nothing after it. They now print a line every ``PROGRESS_EVERY`` seconds; a wait that ends sooner
prints none (a warm demo's waits are seconds)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import cast

import pytest
from kubernetes import client

from gitopsguard.commands import demo_incluster
from gitopsguard.commands.demo_incluster import DemoInstall, _state, _wait
from gitopsguard.commands.demo_incluster_units import until
from gitopsguard.errors import DevClusterError


def test_a_long_wait_reports_its_progress_every_so_often() -> None:
    said: list[float] = []
    assert until(lambda: False, 0.45, 0.01, progress=said.append, progress_every=0.1) is None
    assert 3 <= len(said) <= 5
    assert said == sorted(said) and said[0] >= 0.1


def test_a_wait_that_ends_in_time_reports_nothing() -> None:
    said: list[float] = []
    assert until(lambda: True, 5, progress=said.append, progress_every=0.0) is not None
    assert said == []


def test_the_installs_wait_for_the_pods_shows_where_they_are_and_then_what_to_look_at(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(demo_incluster, "PROGRESS_EVERY", 0.1)
    monkeypatch.setattr(demo_incluster, "pods_now", lambda _: "Pods gitopsguard-1 ContainerCreating; leader: none")
    demo = cast(DemoInstall, SimpleNamespace(kubeconfig="/state/kubeconfig"))
    with pytest.raises(DevClusterError, match=r"^two Pods: not within 1 s; see KUBECONFIG=/state/kubeconfig kubectl"):
        _wait(lambda: False, 0.65, "two Pods", demo)  # it looks every 0.2 s
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) >= 2
    assert all(line.endswith("s: Pods gitopsguard-1 ContainerCreating; leader: none") for line in lines)


def test_a_pod_whose_container_waits_shows_the_reason_rather_than_its_phase() -> None:
    waiting = client.V1ContainerState(waiting=client.V1ContainerStateWaiting(reason="CrashLoopBackOff"))
    status = client.V1PodStatus(phase="Running", container_statuses=[
        client.V1ContainerStatus(name="gitopsguard", image="gitopsguard:dev", image_id="", ready=False,
                                 restart_count=3, state=waiting)])  # fmt: skip
    assert _state(client.V1Pod(status=status)) == "CrashLoopBackOff"
    assert _state(client.V1Pod(status=client.V1PodStatus(phase="Pending"))) == "Pending"
