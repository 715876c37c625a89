"""Any failure to render or judge a head refuses it, with its reason: never an "internal error" that
escapes the pass (and, in the loop, stops the last applied commit from being held)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from gitopsguard.cluster.apply import Applier
from gitopsguard.errors import GitOpsGuardError, RenderError
from gitopsguard.heads import Head, judge
from gitopsguard.model import Manifest
from gitopsguard.reconcile import Unit
from gitopsguard.source import Revision

UNEXPECTED = (ValueError, TypeError, KeyError, AttributeError, RecursionError, OverflowError, MemoryError,
              UnicodeError, AssertionError, ZeroDivisionError, OSError, RuntimeError, LookupError)  # fmt: skip


def failing_render(error: BaseException) -> Callable[[Path, str, str], tuple[Manifest, ...]]:
    def render(checkout: Path, path: str, commit: str) -> tuple[Manifest, ...]:
        raise error

    return render


def judged(tmp_path: Path, error: BaseException) -> Head:
    revision = Revision("c0ffee" * 6 + "abcd", tmp_path, "bad", "bad")
    # No policies folder: the gate needs no API server, so the applier is never asked anything.
    return judge(Unit("u", "apps", policies_path=None), revision, Applier.__new__(Applier), failing_render(error))


@given(kind=st.sampled_from(UNEXPECTED), text=st.text(max_size=20_000))
@example(kind=ValueError, text="Exceeds the limit (4300 digits) for integer string conversion")
@example(kind=AttributeError, text="'str' object has no attribute 'get'")
@example(kind=RecursionError, text="maximum recursion depth exceeded")
def test_any_exception_from_render_or_gate_refuses_the_head_with_its_reason(
    tmp_path_factory: pytest.TempPathFactory, kind: type[Exception], text: str
) -> None:
    head = judged(tmp_path_factory.mktemp("h"), kind(text))
    assert isinstance(head.refusal, RenderError)
    message = str(head.refusal)
    assert message.startswith("apps at c0ffeec0ffee: could not be rendered or judged (" + kind.__name__)
    assert len(message) < 1_000, "a hostile message is cut short"
    with pytest.raises(GitOpsGuardError):
        head.accepted()


def test_a_refusal_raised_on_every_pass_does_not_pile_up_tracebacks(tmp_path: Path) -> None:
    head = judged(tmp_path, ValueError("x"))
    depths = []
    for _ in range(3):
        try:
            head.accepted()
        except GitOpsGuardError as error:
            depth, tb = 0, error.__traceback__
            while tb is not None:
                depth, tb = depth + 1, tb.tb_next
            depths.append(depth)
    assert depths[0] == depths[-1]


def test_a_typed_error_from_render_is_kept_as_it_is(tmp_path: Path) -> None:
    error = RenderError("apps/a.yaml:3: not valid YAML")
    assert judged(tmp_path, error).refusal is error
