"""A Unit's identity inside gitopsguard: the value of its ``gitopsguard.io/unit`` labels, and the name its
inventory, state and Lease are kept under.

``<namespace>.<name>`` when that is a valid label value (at most 63 characters), else a stable hash form. The
two forms never meet: the readable one always holds a dot (a namespace has none, so the first dot ends it)
and the hash form never does, and no name derived from ``--path`` holds ``--`` (``unit_name_for`` folds every
run of other characters into one ``-``) while the hash form always does. So no Unit can take another's id by
choosing its name, nor the id of a single-unit ``run --path``.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass

from gitopsguard.errors import UnitError

# Kubernetes' own rules (apimachinery validation: IsDNS1123Label, IsDNS1123Subdomain), ASCII only: `\d` and
# `\w` would take Unicode digits and letters the API server refuses.
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_DNS_SUBDOMAIN_PART = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
LABEL_VALUE_MAX = 63
_HASH_CHARS = 16  # 64 bits of sha256: no two Units of one cluster meet by chance


def is_dns_label(text: object) -> bool:
    return isinstance(text, str) and _DNS_LABEL.fullmatch(text) is not None


def is_dns_subdomain(text: object) -> bool:
    if not isinstance(text, str) or not 0 < len(text) <= 253:
        return False
    return all(_DNS_SUBDOMAIN_PART.fullmatch(part) for part in text.split("."))


@dataclass(frozen=True, order=True)
class UnitRef:
    """Which Unit: its namespace and name (as ``dependsOn`` names one)."""

    namespace: str
    name: str

    def __str__(self) -> str:
        return f"Unit/{self.namespace}/{self.name}"


@functools.lru_cache(maxsize=16384)  # asked for each Unit many times a round (1,000 Units: 0.05 CPU-s a minute)
def unit_id(namespace: str, name: str) -> str:
    """The id of Unit ``namespace/name``: ``namespace.name``, or ``<prefix>--<hash>`` when that would pass 63
    characters. UnitError when the namespace is no DNS label or the name no DNS subdomain (as the API server
    would refuse them)."""
    if not is_dns_label(namespace):
        raise UnitError(f"Unit/{namespace}/{name}: namespace {namespace!r} is not a valid namespace name "
                        "(lower-case letters, digits and '-', at most 63)")  # fmt: skip
    if not is_dns_subdomain(name):
        raise UnitError(f"Unit/{namespace}/{name}: name {name!r} is not a valid object name (lower-case letters, "
                        "digits, '-' and '.', at most 253)")  # fmt: skip
    readable = f"{namespace}.{name}"
    if len(readable) <= LABEL_VALUE_MAX:
        return readable
    digest = hashlib.sha256(f"{namespace}/{name}".encode()).hexdigest()[:_HASH_CHARS]
    prefix = readable.replace(".", "-")[: LABEL_VALUE_MAX - len(digest) - 2].rstrip("-")
    return f"{prefix}--{digest}"
