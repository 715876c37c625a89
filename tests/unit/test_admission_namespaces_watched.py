"""Which namespace object admission judges by (``admission.serve.watched_namespaces``): the watch's while it is in
sync and has seen the namespace; else a read. Who would break it: a tenant whose Pod follows their namespace's
creation faster than the watch; it must be judged by that namespace's labels, read, never as unlabelled."""

from __future__ import annotations

from collections.abc import Callable

from gitopsguard.admission.serve import watched_namespaces
from gitopsguard.cluster.namespaces import NamespaceView
from gitopsguard.model import KubeObject

WATCHED: KubeObject = {"metadata": {"name": "team", "resourceVersion": "120",
                                     "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}  # fmt: skip
READ: KubeObject = {"metadata": {"name": "team", "resourceVersion": "100",
                                  "labels": {"pod-security.kubernetes.io/enforce": "baseline"}}}  # fmt: skip


class Seen(NamespaceView):
    """The watch's answer, as given (no informer)."""

    def __init__(self, in_sync: bool, seen: KubeObject | None) -> None:
        self.answer = (in_sync, seen)

    def known(self, name: str) -> tuple[bool, KubeObject | None]:
        return self.answer


def reads(answer: KubeObject | None = READ) -> tuple[list[str], Callable[[str], KubeObject | None]]:
    asked: list[str] = []

    def read(name: str) -> KubeObject | None:
        asked.append(name)
        return answer

    return asked, read


def test_a_namespace_the_watch_has_seen_is_judged_as_seen_when_newer_than_the_cached_read() -> None:
    _, read = reads()
    assert watched_namespaces(Seen(True, WATCHED), read)("team") is WATCHED


def test_a_namespace_the_watch_has_not_seen_yet_or_a_watch_out_of_sync_is_read() -> None:
    for view in (Seen(True, None), Seen(False, None), Seen(False, WATCHED)):
        asked, read = reads()
        assert watched_namespaces(view, read)("team") is READ
        assert asked == ["team"]
