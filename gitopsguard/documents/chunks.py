"""A YAML text cut at its document markers, so that each document can be counted (``bounds.py``) or parsed
(``render/memo.py``) on its own. A document marker cannot occur inside a YAML scalar, so the cut is where the
parser would start a new document anyway; a text with directives (``%``) or explicit document ends (``...``)
is taken whole."""

from __future__ import annotations

import re
from itertools import pairwise

_MARKER = re.compile(r"^---(?=[ \t\r]|$)", re.MULTILINE)
_WHOLE_ONLY = re.compile(r"^(?:%|\.\.\.(?=[ \t\r]|$))", re.MULTILINE)

Chunk = tuple[int, str]  # the line the chunk starts on (0-based), its text


def chunks(text: str) -> list[Chunk] | None:
    """The text cut before each ``---`` line, with the line each piece starts on; None when it must be
    parsed whole."""
    if _WHOLE_ONLY.search(text):
        return None
    cuts = [0, *(m.start() for m in _MARKER.finditer(text) if m.start() > 0), len(text)]
    pieces, line = [], 0
    for begin, end in pairwise(cuts):
        pieces.append((line, text[begin:end]))
        line += text.count("\n", begin, end)
    return pieces
