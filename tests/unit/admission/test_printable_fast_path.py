"""The fast path of ``printable`` (``str.isprintable``, in C) escapes exactly what the per-character walk
escapes: an author's bidi override or line break in an image name can never slip through it."""

from __future__ import annotations

import unicodedata

from hypothesis import example, given
from hypothesis import strategies as st

from gitopsguard.admission.text import printable


def _walked(text: str) -> str:
    """The definition: every character of category C* or Z*, but the space, escaped."""
    return "".join(c if c == " " or unicodedata.category(c)[0] not in "CZ" else f"\\u{ord(c):04x}" for c in text)


@given(st.text())
@example("nginx\u202e:1.0")  # right-to-left override
@example("a\u2028b\u00a0c\u3000d")  # line separator, no-break space, ideographic space
@example("\U000e0001tag")  # language tag (Cf, astral)
@example("\ud800")  # a lone surrogate (Cs), as JSON can carry
@example("\U0010ffff\ufffe")  # noncharacters (Cn)
def test_printable_escapes_exactly_what_the_definition_escapes(text: str) -> None:
    assert printable(text) == _walked(text)


def test_plain_text_comes_back_as_it_is() -> None:
    text = "GG101 spec.containers[0].image: nginx:latest is not pinned; pin a digest"
    assert printable(text) is text
