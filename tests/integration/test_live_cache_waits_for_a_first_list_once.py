"""A read of the loop's cache waits for a kind's first list at most ``FIRST_LIST_WAIT`` after the kind was
tracked, in all, and no longer once the loop is stopping: not that long again at every read, nor that long
again for each kind. Who breaks it: a slow or lagging API server (a first list of 5,000 objects behind a
throttled or congested server, a list whose continue token keeps expiring), under which every pass of the
loop waited a whole minute for each kind whose first list was still under way, and then listed the kind
itself all the same; with two such kinds, two minutes a pass, holding up SIGTERM (and a lost lease's stop),
the repair of drift and the next head. Before the waits, the pass listed at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from gitopsguard.cluster import livecache
from gitopsguard.cluster.apply import Applier
from gitopsguard.cluster.livecache import LiveCache
from gitopsguard.cluster.rest import RawApi

pytestmark = pytest.mark.integration
CONFIGMAPS, SECRETS = ("v1", "ConfigMap"), ("v1", "Secret")
WAIT = 1.0  # FIRST_LIST_WAIT for these tests


@pytest.fixture
def stop() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()


@pytest.fixture
def slow_lists(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """The cache's lists (``Applier.list_pages``) start only once the returned event is set: a slow server."""
    release, real = threading.Event(), Applier.list_pages

    def list_pages(self: Applier, api_version: str, kind: str, **options: Any) -> Any:
        release.wait(30)
        return real(self, api_version, kind, **options)

    monkeypatch.setattr(Applier, "list_pages", list_pages)
    monkeypatch.setattr(livecache, "FIRST_LIST_WAIT", WAIT)
    yield release
    release.set()


def cache_of(admin_api: client.ApiClient, namespace: str) -> LiveCache:
    return LiveCache(Applier(admin_api), RawApi(admin_api), namespace, on_change=lambda: None)


def timed(read: Any) -> tuple[Any, float]:
    started = time.monotonic()
    return read(), time.monotonic() - started


def test_a_read_waits_for_a_slow_first_list_once_and_the_next_reads_do_not_wait_again(
    admin_api: client.ApiClient, namespace: str, stop: threading.Event, slow_lists: threading.Event
) -> None:
    cache = cache_of(admin_api, namespace)
    cache.track(CONFIGMAPS, stop)
    first, waited = timed(lambda: cache.objects(CONFIGMAPS))
    assert first is None and WAIT * 0.8 <= waited < WAIT * 2, waited  # the pass lists the kind itself
    again, waited = timed(lambda: cache.objects(CONFIGMAPS))
    assert again is None and waited < WAIT / 4, waited
    slow_lists.set()  # the list ends: served from the cache from then on
    deadline = time.monotonic() + 10
    while cache.objects(CONFIGMAPS) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert cache.objects(CONFIGMAPS) == {}


def test_reads_of_several_kinds_whose_first_lists_are_slow_wait_the_first_list_wait_in_all(
    admin_api: client.ApiClient, namespace: str, stop: threading.Event, slow_lists: threading.Event
) -> None:
    cache = cache_of(admin_api, namespace)
    cache.track(CONFIGMAPS, stop)
    cache.track(SECRETS, stop)
    read, waited = timed(lambda: (cache.objects(CONFIGMAPS), cache.objects(SECRETS)))
    assert read == (None, None)
    assert waited < WAIT * 1.5, waited


def test_a_stop_ends_a_read_waiting_for_a_first_list(
    admin_api: client.ApiClient, namespace: str, stop: threading.Event, slow_lists: threading.Event,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """SIGTERM, or a lost leader lease, sets the loop's stop: its pass must not sit out the rest of a minute."""
    monkeypatch.setattr(livecache, "FIRST_LIST_WAIT", 30.0)
    cache = cache_of(admin_api, namespace)
    cache.track(CONFIGMAPS, stop)
    threading.Timer(0.3, stop.set).start()
    read, waited = timed(lambda: cache.objects(CONFIGMAPS))
    assert read is None and waited < 2.0, waited
