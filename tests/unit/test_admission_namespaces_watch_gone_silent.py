"""``admission.serve.watched_namespaces`` never judges by labels older than the cached read it replaced. Who would
break it: a watch whose connection went silent (a stalled proxy, a half-open TCP connection) still says it is in
sync until its read timeout, over 5 minutes; an operator tightens a namespace's enforce level meanwhile, and a
tenant's privileged Pod is judged by the old level for those minutes, where the 5 s cache would have read it."""

from __future__ import annotations

from gitopsguard.admission.serve import watched_namespaces
from gitopsguard.cluster.namespaces import NamespaceView
from gitopsguard.model import KubeObject


def namespace(version: str, enforce: str, uid: str = "u1") -> KubeObject:
    return {"metadata": {"name": "team", "uid": uid, "resourceVersion": version,
                         "labels": {"pod-security.kubernetes.io/enforce": enforce}}}  # fmt: skip


class Seen(NamespaceView):
    """The watch's answer, as given (no informer)."""

    def __init__(self, seen: KubeObject) -> None:
        self.seen = seen

    def known(self, name: str) -> tuple[bool, KubeObject | None]:
        return True, self.seen


def test_a_silent_watch_older_than_the_cached_read_is_refused_for_the_read() -> None:
    stale, tightened = namespace("120", "privileged"), namespace("180", "restricted")
    assert watched_namespaces(Seen(stale), lambda _: tightened)("team") is tightened


def test_a_namespace_deleted_and_made_again_is_judged_by_the_new_one_when_the_watch_missed_it() -> None:
    old, new = namespace("120", "privileged", uid="u1"), namespace("300", "restricted", uid="u2")
    assert watched_namespaces(Seen(old), lambda _: new)("team") is new


def test_versions_that_are_not_numbers_or_absurdly_long_fall_back_to_the_read() -> None:
    read = namespace("100", "restricted")
    for odd in ("", "abc", "١٢٣", "9" * 5000, "-5"):
        assert watched_namespaces(Seen(namespace(odd, "privileged")), lambda _: read)("team") is read


def test_an_unreadable_namespace_stays_unreadable_whatever_the_watch_holds() -> None:
    assert watched_namespaces(Seen(namespace("120", "privileged")), lambda _: None)("team") is None
