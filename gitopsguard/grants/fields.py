"""Typed, bounded reading of the fields of grant and escalation policy documents.

Everything here comes from a Git commit anyone may push, so nothing is trusted to have the type it should:
each accessor checks the type and the size and raises PolicyError naming the file and the line of the key.
Values are never turned into text with ``str()`` (a YAML alias bomb would make that text enormous).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from gitopsguard.documents.lines import Lined
from gitopsguard.errors import PolicyError

MAX_DURATION = timedelta(days=90)  # no temporary access lasts longer, whatever a policy says
MAX_NAME = 253  # a Kubernetes name, user or group is no longer
MAX_REASON = 2000
MAX_ITEMS = 500  # users, groups, namespaces or roles in one list
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_CONTROL_IN_TEXT = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")  # free text keeps \n and \t


class FieldError(PolicyError):
    """A field of one file is wrong; ``where`` is that file and line."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}")
        self.where = where


def _lined(line: int, **values: Any) -> Lined:
    made = Lined(values)
    made.line, made.key_lines = line, {}
    return made


def has_control(text: str) -> bool:
    return _CONTROL.search(text) is not None


def at(node: Lined, key: str, name: str) -> str:
    """``file:line`` of ``key`` in ``node`` (of the node itself when the key is absent)."""
    return f"{name}:{node.line_of(key)}"


def mapping(node: Lined, key: str, name: str, *, required: bool = True) -> Lined:
    value = node.get(key)
    if value is None and not required:
        return _lined(node.line_of(key))
    if not isinstance(value, Lined):
        raise FieldError(at(node, key, name), f"`{key}` must be a mapping")
    return value


def text(node: Lined, key: str, name: str, *, required: bool = True, free: bool = False) -> str:
    """A string field, bounded. No control characters: they would reach the audit log, Slack and terminals
    as they are (a reason, ``free`` text, may hold line breaks and tabs)."""
    limit = MAX_REASON if free else MAX_NAME
    value = node.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise FieldError(at(node, key, name), f"`{key}` must be a non-empty string")
    if len(value) > limit:
        raise FieldError(at(node, key, name), f"`{key}` is longer than {limit} characters")
    if (_CONTROL_IN_TEXT if free else _CONTROL).search(value):
        raise FieldError(at(node, key, name), f"`{key}` holds control characters")
    return value


def choice(node: Lined, key: str, name: str, allowed: tuple[str, ...]) -> str:
    value = node.get(key)
    if not isinstance(value, str) or value not in allowed:
        raise FieldError(at(node, key, name), f"`{key}` must be one of {', '.join(allowed)}")
    return value


def strings(node: Lined, key: str, name: str) -> frozenset[str]:
    """A list of names (absent or null: none)."""
    value = node.get(key)
    if value is None:
        return frozenset()
    if not isinstance(value, list) or len(value) > MAX_ITEMS:
        raise FieldError(at(node, key, name), f"`{key}` must be a list of at most {MAX_ITEMS} names")
    return frozenset(text(_lined(node.line_of(key), item=item), "item", name) for item in value)


def flag(node: Lined, key: str, name: str, default: bool) -> bool:
    value = node.get(key, default)
    if not isinstance(value, bool):
        raise FieldError(at(node, key, name), f"`{key}` must be true or false")
    return value


def count(node: Lined, key: str, name: str, default: int, *, most: int) -> int:
    value = node.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
        raise FieldError(at(node, key, name), f"`{key}` must be a whole number from 1 to {most}")
    return value


def duration(value: Any, where: str) -> timedelta:
    """``90s``, ``30m``, ``2h`` or ``1d``: positive, and at most MAX_DURATION; PolicyError at ``where`` else."""
    match = re.fullmatch(r"([0-9]{1,12})([smhd])", value.strip()) if isinstance(value, str) else None
    if match is None or int(match[1]) == 0:
        shown = repr(value) if isinstance(value, str | int | float | bool) else f"a {type(value).__name__}"
        raise FieldError(where, f"{shown[:80]} is not a duration such as 90s, 30m, 2h or 1d")
    seconds = int(match[1]) * _UNIT_SECONDS[match[2]]
    if seconds > MAX_DURATION.total_seconds():
        raise FieldError(where, f"{value.strip()} is longer than {MAX_DURATION.days}d, the most any grant may last")
    return timedelta(seconds=seconds)


def duration_field(node: Lined, key: str, name: str, default: str | None = None) -> timedelta:
    return duration(node.get(key, default), at(node, key, name))
