"""Connections in their TLS handshake are counted apart from the server's slots (admission/peers.py): never more
than the cap, the oldest cut first for a newcomer, each cut at its deadline, and one whose handshake ended
is never cut (its descriptor may already be someone else's)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gitopsguard.admission.peers import Handshakes, peer_names


@pytest.fixture
def pairs() -> Iterator[list[tuple[socket.socket, socket.socket]]]:
    made: list[tuple[socket.socket, socket.socket]] = []
    yield made
    for ours, theirs in made:
        ours.close()
        theirs.close()


def _pair(made: list[tuple[socket.socket, socket.socket]]) -> tuple[socket.socket, socket.socket]:
    made.append(socket.socketpair())
    return made[-1]


def _cut(peer: socket.socket) -> bool:
    """Whether the other end was shut down (its peer reads end of file)."""
    peer.settimeout(0.5)
    try:
        return peer.recv(1) == b""
    except TimeoutError:
        return False


def test_a_newcomer_at_the_cap_cuts_the_oldest_handshake_only(pairs: list[tuple[socket.socket, socket.socket]]) -> None:
    budget = Handshakes(cap=3, deadline=60)
    made = [_pair(pairs) for _ in range(4)]
    for ours, _ in made:
        budget.begin(ours)
    assert len(budget) == 3 and budget.cut == 1
    assert _cut(made[0][1]) and not any(_cut(theirs) for _, theirs in made[1:])


def test_a_handshake_past_its_deadline_is_cut_and_an_ended_one_never_is(
    pairs: list[tuple[socket.socket, socket.socket]],
) -> None:  # fmt: skip
    budget = Handshakes(cap=10, deadline=0.2)
    (slow, slow_peer), (done, done_peer) = _pair(pairs), _pair(pairs)
    budget.begin(slow)
    budget.begin(done)
    budget.end(done)
    time.sleep(0.3)
    budget.reap()
    assert _cut(slow_peer) and not _cut(done_peer) and len(budget) == 0


@given(st.lists(st.sampled_from(["begin", "end", "reap"]), max_size=60), st.integers(1, 5))
def test_the_budget_never_holds_more_than_its_cap(steps: list[str], cap: int) -> None:
    budget = Handshakes(cap=cap, deadline=60)
    open_: list[tuple[socket.socket, socket.socket]] = []
    try:
        for step in steps:
            if step == "begin":
                open_.append(socket.socketpair())
                budget.begin(open_[-1][0])
            elif step == "end" and open_:
                budget.end(open_[0][0])
            else:
                budget.reap()
            assert len(budget) <= cap
    finally:
        for ours, theirs in open_:
            ours.close()
            theirs.close()


@given(st.dictionaries(st.sampled_from(["subject", "subjectAltName", "issuer"]),
                       st.lists(st.tuples(st.text(max_size=5), st.text(max_size=5)), max_size=3)))  # fmt: skip
def test_names_are_read_from_any_certificate_dict_without_error(certificate: dict[str, object]) -> None:
    subject = certificate.get("subject")
    if subject is not None:  # getpeercert's subject is a tuple of RDNs, each a tuple of (key, value) pairs
        certificate["subject"] = tuple((pair,) for pair in subject)  # type: ignore[attr-defined]
    assert isinstance(peer_names(certificate), frozenset)
