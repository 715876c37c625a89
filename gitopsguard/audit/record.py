"""One audit record and its one line of text.

A record is written as JSON with every non-ASCII code point escaped (``ensure_ascii``), so its line is ASCII
and no text a field carries (U+2028, NEL, a lone surrogate, a terminal escape) can end or split it: the only
line break in the file is the b"\\n" after each record. Its hash covers the fields, not the line; a line is
only accepted in the exact form gitopsguard writes (escaped, or raw UTF-8 as versions before issue #15
wrote), so a byte changed anywhere in the file shows.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, fields
from typing import Any

from gitopsguard.errors import GitOpsGuardError

GENESIS = "0" * 64


@dataclass(frozen=True)
class AuditRecord:
    seq: int
    time: str
    event: str  # what happened: an object's action, "reconcile-failed", "brake-engaged", ...
    unit: str
    revision: str
    subject: str  # the object or thing it happened to
    detail: str
    prev: str
    hash: str

    def body(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "hash"}


_NAMES = tuple(f.name for f in fields(AuditRecord))


def recordable(value: object) -> str:
    """A field's text as the log keeps it: what its JSON reads back as. That is the text itself, except that
    a high surrogate followed by a low one is the one character they encode (as in UTF-16). Bytes are read
    as UTF-8 with invalid bytes shown as ``\\xff``; anything else that is not text as ``str()`` shows it."""
    if isinstance(value, bytes):
        text = value.decode("utf-8", "backslashreplace")
    elif isinstance(value, str):
        text = str(value)
    else:
        text = _shown(value)
    decoded: str = json.loads(json.dumps(text))
    return decoded


def _shown(value: object) -> str:
    try:
        return str(value)
    except Exception:  # an int too long for str(), a __str__ that raises: the record is still kept
        return f"<{type(value).__name__} that cannot be shown>"


def digest(body: dict[str, Any]) -> str:
    """SHA-256 over ``prev`` and the canonical JSON of the fields. Raw UTF-8, as since the first version, so
    older logs still verify; ``surrogatepass`` lets a lone surrogate be hashed instead of raising."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{body['prev']}\n{canonical}".encode("utf-8", "surrogatepass")).hexdigest()


def encode(record: AuditRecord) -> bytes:
    """The record's line, its b"\\n" included: ASCII only."""
    return json.dumps(record.__dict__, ensure_ascii=True).encode("ascii") + b"\n"


def decode(line: bytes, where: str) -> AuditRecord:
    """The record on ``line`` (without its b"\\n"), which must be exactly as gitopsguard writes it."""
    try:
        raw = json.loads(line.decode("utf-8"))
    except (ValueError, RecursionError) as error:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise GitOpsGuardError(f"{where}: not an audit record ({error})") from error
    if not isinstance(raw, dict) or tuple(raw) != _NAMES:
        raise GitOpsGuardError(f"{where}: not an audit record (expected the fields {', '.join(_NAMES)})")
    if type(raw["seq"]) is not int or not all(isinstance(raw[name], str) for name in _NAMES[1:]):
        raise GitOpsGuardError(f"{where}: not an audit record (seq must be a number and every other field text)")
    record = AuditRecord(**raw)
    if line not in _written_forms(record):
        raise GitOpsGuardError(
            f"{where}: not written as gitopsguard writes records (spacing or escapes changed by hand or a tool)"
        )
    return record


def _written_forms(record: AuditRecord) -> tuple[bytes, ...]:
    escaped = json.dumps(record.__dict__, ensure_ascii=True).encode("ascii")
    try:  # before issue #15, lines held raw UTF-8 (never a lone surrogate: writing one raised)
        return escaped, json.dumps(record.__dict__, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return (escaped,)
