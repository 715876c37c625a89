"""A relist read in pages (``Informer``, ``Applier.list_pages``): each page handed on before the next is read, a
continue token that expired lists again from the start, and a list that fails part way changes nothing a reader
sees (the kind stays out of sync, so no pass or prune decides from half a list).

The API server is stood in for by ``Pages``, a stand-in of the applier's one listing seam (``list_pages``), so
that a failure can be put between two pages; the paging on the wire is tested against the real API server in
``tests/integration/test_informer_pages.py``."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from gitopsguard.cluster.apply import ListExpiredError
from gitopsguard.cluster.informer import Informer
from gitopsguard.cluster.livecache import LiveCache
from gitopsguard.errors import ClusterError
from gitopsguard.model import KubeObject, ObjectKey

CONFIGMAPS = ("v1", "ConfigMap")


def cm(name: str, version: str, uid: str = "") -> KubeObject:
    metadata = {"name": name, "namespace": "ns", "uid": uid or f"uid-{name}", "resourceVersion": version}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata}


def key(name: str) -> ObjectKey:
    return ObjectKey("", "ConfigMap", "ns", name)


class Pages:
    """Answers each list with ``lists``' next entry: its pages in order; a page that is an exception is raised
    there instead (after the pages before it were handed on). Records when each page was read."""

    def __init__(self, *lists: list[list[KubeObject] | Exception], stop: threading.Event) -> None:
        self._lists, self._stop = list(lists), stop
        self.read: list[str] = []  # "list N page M", as each page is handed out
        self.limits: list[int] = []

    def list_pages(
        self, api_version: str, kind: str, *, namespace: str | None = None, query: dict[str, str] | None = None,
        what: str = "", limit: int = 500,
    ) -> Iterator[tuple[dict[ObjectKey, KubeObject], str]]:  # fmt: skip
        number = len(self.limits)
        self.limits.append(limit)
        pages = self._lists.pop(0)
        if not self._lists:
            self._stop.set()  # the last list asked for: the informer ends after it
        for index, page in enumerate(pages):
            if isinstance(page, Exception):
                raise page
            self.read.append(f"list {number} page {index}")
            yield {ObjectKey.of(body): body for body in page}, "100"

    def collection_path(self, api_version: str, kind: str, namespace: str | None = None) -> str:
        return "/api/v1/configmaps"


class Silent:
    """A raw API whose watches end at once (the informer then lists again, or stops)."""

    def watch(self, path: str, query: dict[str, str], **_: Any) -> Iterator[dict[str, Any]]:
        return iter(())


class Heard:
    def __init__(self, pages: Pages) -> None:
        self._pages = pages
        self.events: list[tuple[str, str, str]] = []  # (change, name, the last page read when it was told)
        self.synced: list[bool] = []

    def on_event(self, change: str, body: KubeObject) -> None:
        self.events.append((change, body["metadata"]["name"], self._pages.read[-1] if self._pages.read else ""))


def informer(pages: Pages, heard: Heard, *, page: int = 2) -> Informer:
    return Informer(pages, Silent(), CONFIGMAPS, on_event=heard.on_event, on_sync=heard.synced.append,  # type: ignore[arg-type]
                    page=page)  # fmt: skip


def run(informer: Informer, stop: threading.Event) -> None:
    thread = informer.start(stop)
    thread.join(timeout=30)
    assert not thread.is_alive(), "the informer ended once its last list was read"


def test_each_page_is_handed_on_before_the_next_is_read() -> None:
    stop = threading.Event()
    pages = Pages([[cm("a", "1"), cm("b", "1")], [cm("c", "1"), cm("d", "1")], [cm("e", "1")]], stop=stop)
    heard = Heard(pages)
    found = informer(pages, heard, page=2)
    run(found, stop)
    assert pages.limits == [2], "the page size asked for is the informer's"
    assert heard.events == [("ADDED", "a", "list 0 page 0"), ("ADDED", "b", "list 0 page 0"),
                            ("ADDED", "c", "list 0 page 1"), ("ADDED", "d", "list 0 page 1"),
                            ("ADDED", "e", "list 0 page 2")]  # fmt: skip
    assert set(found.objects()) == {key(n) for n in "abcde"} and heard.synced == [True]


def test_a_list_failing_part_way_leaves_what_the_informer_knows_as_it_was_and_the_kind_out_of_sync() -> None:
    """Attack: a list cut after its first page (the server restarting, a proxy). Half a list taken for the
    whole would say the rest is gone: a LiveCache reader would see it, a prune could decide from it."""
    stop = threading.Event()
    cut = ClusterError("listing ConfigMap owned: the API server is unreachable")
    pages = Pages([[cm("a", "2"), cm("new", "1")], cut], stop=stop)
    heard = Heard(pages)
    found = informer(pages, heard)
    found.seed({key("a"): cm("a", "1"), key("b"): cm("b", "1")}, "")  # "": list first
    run(found, stop)
    assert found.objects() == {key("a"): cm("a", "1"), key("b"): cm("b", "1")}, "as before the failed list"
    assert found.resource_version == "", "the next round lists again"
    assert heard.synced == [False], "never in sync from half a list"
    assert ("DELETED", "b", "list 0 page 0") not in heard.events, "nothing is gone on half a list's word"


def test_the_list_after_a_failed_one_reports_what_went_meanwhile_and_repeats_nothing() -> None:
    """What a failed list already told (``new`` ADDED, ``a`` MODIFIED) is not told again, and an object told
    ADDED that is gone by the next list is reported DELETED: a cache fed by the events keeps no ghost."""
    stop = threading.Event()
    cut = ClusterError("listing ConfigMap owned: the connection was reset")
    pages = Pages([[cm("a", "2"), cm("new", "1")], cut], [[cm("a", "2")], [cm("c", "1")]], stop=stop)
    heard = Heard(pages)
    found = informer(pages, heard)
    found.seed({key("a"): cm("a", "1"), key("b"): cm("b", "1")}, "")
    run(found, stop)
    changes = [(change, name) for change, name, _ in heard.events]
    assert changes[:3] == [("MODIFIED", "a"), ("ADDED", "new"), ("ADDED", "c")]
    assert sorted(changes[3:]) == [("DELETED", "b"), ("DELETED", "new")], "once the whole list is in"
    assert set(found.objects()) == {key("a"), key("c")} and heard.synced == [False, True]


def test_a_continue_token_that_expired_lists_again_from_the_first_page() -> None:
    """The server compacted the revision the list was read at (410 Expired on the continue token): the rest
    cannot be read consistently, so the whole list is read again, and nothing already told is told twice."""
    stop = threading.Event()
    expired = ListExpiredError("listing ConfigMap owned: the list's continue token expired")
    pages = Pages([[cm("a", "1")], expired], [[cm("a", "1")], [cm("b", "2")]], stop=stop)  # the second: asked again
    heard = Heard(pages)
    found = informer(pages, heard)
    run(found, stop)
    assert pages.read == ["list 0 page 0", "list 1 page 0", "list 1 page 1"]
    assert [(change, name) for change, name, _ in heard.events] == [("ADDED", "a"), ("ADDED", "b")]
    assert set(found.objects()) == {key("a"), key("b")} and heard.synced == [True]


def test_a_continue_token_expiring_again_and_again_fails_the_list_instead_of_spinning() -> None:
    stop = threading.Event()
    expired = ListExpiredError("listing ConfigMap owned: the list's continue token expired")
    once: list[list[KubeObject] | Exception] = [[cm("a", "1")], expired]
    pages = Pages(*(list(once) for _ in range(3)), stop=stop)
    heard = Heard(pages)
    found = informer(pages, heard)
    run(found, stop)
    assert len(pages.limits) == 3 and heard.synced == [False] and found.objects() == {}


def test_a_live_cache_serves_no_object_of_a_kind_whose_first_list_failed_part_way() -> None:
    """The loop's cache (``LiveCache``) woken by the first page's events must still answer None (list it
    yourself), never the first page as all the unit owns."""
    stop = threading.Event()
    pages = Pages([[cm("a", "1")], ClusterError("listing ConfigMap owned: reset")], stop=stop)
    woken = threading.Event()
    cache = LiveCache(pages, Silent(), "unit", on_change=woken.set, page=1)  # type: ignore[arg-type]
    cache.track(CONFIGMAPS, stop)
    assert stop.wait(30) and woken.wait(30)
    assert cache.objects(CONFIGMAPS) is None
