"""A child excused by its controller comes back to judgement whenever that controller changes or goes, and
only then."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from gitopsguard.scan.excused import Excused

PRINTS = st.text(max_size=3)


def _child(uid: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"uid": uid, "namespace": "t", "name": uid}}


@given(PRINTS, st.lists(st.one_of(st.none(), PRINTS), min_size=1, max_size=5), st.integers(1, 3))
@example("1", ["1", "2"], 1)  # the tenant fixes the DaemonSet's template: its Pod is judged again
@example("1", [None], 2)  # the controller is deleted
def test_children_come_back_exactly_when_their_controller_changes_or_goes(
    first: str, later: list[str | None], count: int
) -> None:
    excused = Excused()
    owner = {"metadata": {"uid": "ds"}}
    for n in range(count):
        excused.add(owner, first, _child(f"p{n}"))
    current: str | None = first
    for fingerprint in later:
        back = excused.changed("ds", fingerprint)
        expected = current is not None and fingerprint != current
        assert {c.uid for c in back} == ({f"p{n}" for n in range(count)} if expected else set())
        if back:
            current = None  # forgotten until judged (and excused) again
    assert excused.changed("other", "x") == []


def test_a_child_deleted_meanwhile_is_not_brought_back() -> None:
    excused = Excused()
    excused.add({"metadata": {"uid": "ds"}}, "1", _child("p"))
    excused.drop("p")
    assert excused.changed("ds", "2") == []
