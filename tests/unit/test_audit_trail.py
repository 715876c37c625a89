"""cluster.audittrail: reading who wrote an object out of the API server's audit log."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from hypothesis import example, given
from hypothesis import strategies as st

from gitopsguard.cluster.audittrail import AuditTrail, Writer, parse
from tests.waiting import eventually


def line(**changes: object) -> str:
    event: dict[str, object] = {
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata", "stage": "ResponseComplete",
        "verb": "patch", "user": {"username": "alice", "groups": ["team-shop"]}, "userAgent": "kubectl/v1.31.0 (linux)",
        "requestURI": "/apis/apps/v1/namespaces/shop/deployments/web/scale",
        "objectRef": {"resource": "deployments", "namespace": "shop", "name": "web", "apiGroup": "apps",
                      "subresource": "scale"},
        "responseStatus": {"code": 200}, "stageTimestamp": "2026-11-24T05:10:00.123456Z",
    }  # fmt: skip
    event.update(changes)
    return json.dumps(event) + "\n"


def test_a_completed_write_names_its_user_verb_client_and_time() -> None:
    key, writer = parse(line()) or (None, None)
    assert key == ("apps", "deployments", "shop", "web")
    assert str(writer) == "user alice (patch with kubectl at 2026-11-24T05:10:00.123456Z)"


def test_reads_failures_dry_runs_status_updates_and_our_own_writes_name_no_writer() -> None:
    assert parse(line(verb="get")) is None
    assert parse(line(stage="RequestReceived")) is None
    assert parse(line(responseStatus={"code": 409})) is None
    assert parse(line(requestURI="/api/v1/namespaces/shop/configmaps/a?dryRun=All&fieldManager=x")) is None
    assert parse(line(objectRef={"resource": "deployments", "name": "web", "subresource": "status"})) is None
    assert parse("not json") is None
    assert parse(line(responseStatus={"code": "9" * 5000})) is None


def knowing_itself(trail: AuditTrail, user: str = "controller") -> AuditTrail:
    """The trail after the audit line of its identity probe came in."""
    trail.feed(line(verb="delete", user={"username": user}, requestURI=f"/x/{trail.probe}?dryRun=All",
                    objectRef={"resource": "configmaps", "namespace": "default", "name": trail.probe},
                    responseStatus={"code": 404}))  # fmt: skip
    assert trail.me == user
    return trail


def test_a_write_claiming_to_be_gitopsguard_by_user_agent_is_named_by_its_authenticated_user() -> None:
    trail = knowing_itself(AuditTrail(Path("/nonexistent")))
    trail.feed(line(userAgent="gitopsguard/x", user={"username": "alice"}))
    writer = trail.writer(("apps", "deployments", "shop", "web"))
    assert writer is not None and writer.user == "alice"


def test_our_own_writes_are_skipped_by_authenticated_user_and_the_writer_before_them_is_named() -> None:
    trail = knowing_itself(AuditTrail(Path("/nonexistent")))
    ref = ("apps", "deployments", "shop", "web")
    trail.feed(line(user={"username": "alice"}))
    trail.feed(line(userAgent="gitopsguard/0.1.0", user={"username": "controller"}))  # our repair, just after
    assert (trail.writer(ref) or Writer("", "", "", "")).user == "alice"
    trail.feed(line(user={"username": "controller"}))  # a person using the controller's account by hand
    assert (trail.writer(ref) or Writer("", "", "", "")).user == "controller"


def test_no_writer_is_named_until_the_trail_knows_who_it_is() -> None:
    """Fail closed: not knowing which writes are ours, the last writer may be our own repair."""
    trail = AuditTrail(Path("/nonexistent"))
    trail.feed(line(user={"username": "alice"}))
    assert trail.writer(("apps", "deployments", "shop", "web")) is None
    trail.feed(line(user={"username": "mallory"}, objectRef={"resource": "configmaps", "name": "not-the-probe"},
                    requestURI=f"/x/not-the-probe?{trail.probe}"))  # fmt: skip
    assert trail.me is None, "only the audit line of the probe object itself teaches who we are"


def test_following_reads_new_lines_whole_and_survives_rotation(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_text(line(user={"username": "before-we-started"}))
    trail, stop = knowing_itself(AuditTrail(log)), threading.Event()
    thread = trail.follow(stop)
    try:
        time.sleep(0.2)
        ref = ("apps", "deployments", "shop", "web")
        with log.open("a") as handle:
            text = line(user={"username": "bob"})
            handle.write(text[:40])  # the API server is halfway through writing a line
            handle.flush()
            time.sleep(0.2)
            assert trail.writer(ref) is None, "only whole lines count; older lines are not this run's"
            handle.write(text[40:])
        eventually(lambda: trail.writer(ref) == Writer("bob", "patch", "2026-11-24T05:10:00.123456Z",
                                                       "kubectl/v1.31.0 (linux)"), timeout=5, every=0.02)  # fmt: skip
        log.rename(tmp_path / "audit-2026.log")  # rotated: the server starts a new file
        log.write_text(line(user={"username": "carol"}, verb="delete"))
        eventually(lambda: (trail.writer(ref) or Writer("", "", "", "")).user == "carol", timeout=5, every=0.02)
    finally:
        stop.set()
        thread.join(5)
    assert not thread.is_alive()


def test_memory_is_bounded() -> None:
    trail = knowing_itself(AuditTrail(Path("/nonexistent"), keep=2))
    for name in ("a", "b", "c"):
        trail.feed(line(objectRef={"resource": "configmaps", "namespace": "x", "name": name}))
    assert trail.writer(("", "configmaps", "x", "a")) is None
    assert trail.writer(("", "configmaps", "x", "c"), wait=0.1) is not None


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)
FIELDS = ("stage", "verb", "user", "userAgent", "requestURI", "objectRef", "responseStatus", "stageTimestamp")


@given(changes=st.dictionaries(st.sampled_from(FIELDS), JSON, max_size=4))
@example(changes={"user": "alice"})
@example(changes={"responseStatus": {"code": "9" * 5000}})
def test_any_audit_line_is_read_or_skipped_and_never_stops_the_trail(changes: dict[str, object]) -> None:
    """An exception here would end the follower thread, and with it (lifeline) the whole controller."""
    trail = knowing_itself(AuditTrail(Path("/nonexistent")))
    trail.feed(line(**changes))
    trail.writer(("apps", "deployments", "shop", "web"))
    trail.feed(line().replace('"code": 200', '"code": ' + "9" * 5000))  # JSON a 5,000-digit number
