"""Text the API server passes on to the user: bounded, and printable.

Findings quote what the object's author wrote (image names, label values), so their text is the author's
choice: control characters and Unicode format characters (bidi overrides) are escaped, and the sizes are
bounded as the API server bounds warnings (k8s.io/apiserver, endpoints/filters/warning.go: each warning cut
at 256 runes, 4 KiB in all), so that what we send is what kubectl shows.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

WARNING_RUNES = 256
WARNINGS_TOTAL = 4096
MESSAGE_TOTAL = 8192  # status.message, in an error the API server returns whole
LINE_RUNES = 1024


def printable(text: str) -> str:
    """``text`` with every control or format character (and each line break) escaped as \\uXXXX."""
    # str.isprintable is exactly "no character of category C* or Z* but the space" (_shown), in C: almost
    # every finding's text is plain, and the per-character walk was the webhook's largest Python cost
    if text.isprintable():
        return text
    return "".join(c if _shown(c) else f"\\u{ord(c):04x}" for c in text)


def _shown(c: str) -> bool:
    return c == " " or unicodedata.category(c)[0] not in "CZ"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def warning_lines(lines: Sequence[str]) -> list[str]:
    """Warnings within the API server's bounds; what does not fit is counted in a last warning."""
    kept: list[str] = []
    total = 0
    for index, line in enumerate(lines):
        shown = _cut(printable(line), WARNING_RUNES)
        rest = len(lines) - index - 1
        reserve = 64 if rest else 0  # room for the count of what is left out
        if total + len(shown) + reserve > WARNINGS_TOTAL:
            kept.append(f"... and {len(lines) - index} more findings (see gitopsguard's audit log)")
            break
        kept.append(shown)
        total += len(shown)
    return kept


def message_lines(lines: Sequence[str]) -> str:
    """Lines joined with newlines, each printable and cut, the whole bounded, with a count of what is left."""
    kept: list[str] = []
    total = 0
    for index, line in enumerate(lines):
        shown = _cut(printable(line), LINE_RUNES)
        if total + len(shown) + 80 > MESSAGE_TOTAL:
            kept.append(f"... and {len(lines) - index} more findings (see gitopsguard's audit log)")
            break
        kept.append(shown)
        total += len(shown) + 1
    return "\n".join(kept)
