"""Text someone else wrote, made safe to show: every character a terminal or a reader would act on rather than
show (controls such as ESC, format characters such as the bidi overrides, line and paragraph separators,
surrogates) written as an escape (``\\x1b``, ``\\u202e``, ``\\udc80``). Pure: the audit log's output, the CLI and a
Unit's status (``units/``, which imports nothing that does I/O) all use it."""

from __future__ import annotations

import unicodedata

HIDDEN = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})  # Unicode categories that are acted on, not shown
_SHORT = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(text: str) -> str:
    """``text`` safe to print on one terminal line, and unambiguous: backslashes escaped too, so that an escape in
    the output is always one this made."""
    return "".join(_escaped(char) if char == "\\" or unicodedata.category(char) in HIDDEN else char for char in text)


def visible(text: str, keep: str = "") -> str:
    """``text`` with its hidden characters escaped, but for those in ``keep`` (such as a newline in a text shown
    on many lines); backslashes left as written, so that a path or a message that holds none of them is kept
    as it is."""
    return "".join(
        _escaped(char) if char not in keep and unicodedata.category(char) in HIDDEN else char for char in text
    )


def _escaped(char: str) -> str:
    code = ord(char)
    if char in _SHORT:
        return _SHORT[char]
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
