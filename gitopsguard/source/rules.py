"""Review rules: which approvers a change to a path needs, and who may push straight to which paths.

They live in the operator's trust file, outside the repository, so a contributor cannot edit the rules that
judge them::

    reviews:
      - paths: ["policies/", "access/policies/"]   # who must approve a change to these paths
        approvers: {groups: [security-reviewers]}   # users and/or groups of the signers below
      - paths: ["apps/shop/"]
        approvers: {groups: [shop-leads]}
      - paths: ["**"]
        approvers: any                              # any signer the trust file maps
    pushes:
      - user: image-bot                             # a signer allowed to push straight (no merge) ...
        paths: ["clusters/dev/image-tags.yaml"]     # ... to these paths only

Every rule whose paths match a changed path must be met by the approver; a path no rule matches cannot be
changed by anyone (add a catch-all ``**`` rule). A signer named in ``pushes`` is a bot: ``approvers: any``
does not count it (name it in ``users`` to let it approve).

Paths have one meaning, and are never handed to git: a pattern is matched against the whole path, as git
names it from the repository root. ``*`` matches any run of characters within one folder name, ``**``
any run across folders (``**/`` at the start or after a ``/``: any number of folders, none included), and a
pattern ending in ``/`` matches everything under that folder. Every other character, ``?``, ``[``, ``]`` and
``\\`` included, matches only itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitopsguard.errors import GitOpsGuardError
from gitopsguard.evidence.identity import Identity
from gitopsguard.evidence.trust import document

MAX_PATTERN = 1024
MAX_RULES = 10_000


@dataclass(frozen=True)
class Pattern:
    text: str
    regex: re.Pattern[str]

    def matches(self, path: str) -> bool:
        return self.regex.fullmatch(path) is not None


@dataclass(frozen=True)
class Rule:
    """Changes to ``paths`` need an approver among ``users`` or ``groups`` (anyone the trust file maps when
    ``anyone``)."""

    paths: tuple[Pattern, ...]
    users: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    anyone: bool = False

    def covers(self, path: str) -> bool:
        return any(p.matches(path) for p in self.paths)

    def allows(self, who: Identity) -> bool:
        return self.anyone or who.user in self.users or bool(self.groups & who.groups)

    def __str__(self) -> str:
        if self.anyone:
            return "any approver"
        named = [f"group {g}" for g in sorted(self.groups)] + sorted(self.users)
        return "one of " + ", ".join(named) if len(named) > 1 else named[0]


@dataclass(frozen=True)
class PushRule:
    user: str
    paths: tuple[Pattern, ...]

    def allows(self, who: Identity, path: str) -> bool:
        return who.user == self.user and any(p.matches(path) for p in self.paths)


@dataclass(frozen=True)
class ReviewRules:
    rules: tuple[Rule, ...] = ()
    pushes: tuple[PushRule, ...] = ()

    def needs(self, path: str) -> tuple[Rule, ...]:
        """Every rule ``path`` falls under (each must be met)."""
        return tuple(r for r in self.rules if r.covers(path))

    def unmet(self, path: str, approvers: tuple[Identity, ...]) -> str:
        """Why ``approvers`` cannot approve a change to ``path``; "" when every rule for it is met."""
        rules = self.needs(path)
        if not rules:
            return f"{path}: no review rule covers it, so nobody may change it (add a rule to the trust file)"
        bots = {push.user for push in self.pushes}  # a bot's key pushes its paths; it approves nothing for `any`
        missing = [str(r) for r in rules if not any(r.allows(a) and not (r.anyone and a.user in bots)
                                                    for a in approvers)]  # fmt: skip
        return f"{path} needs approval by {' and by '.join(missing)}" if missing else ""

    def may_push(self, who: Identity, path: str) -> bool:
        return any(p.allows(who, path) for p in self.pushes)


def pattern(text: str, where: str) -> Pattern:
    """The compiled pattern (see the module docstring for its one meaning); GitOpsGuardError if malformed."""
    if not isinstance(text, str) or not text or len(text) > MAX_PATTERN:
        raise GitOpsGuardError(f"{where}: a path pattern must be a non-empty string of at most {MAX_PATTERN} "
                               "characters")  # fmt: skip
    if text.startswith("/") or "***" in text or "\x00" in text:
        raise GitOpsGuardError(f"{where}: {text[:80]!r}: patterns are relative to the repository root, with "
                               "* and ** only (no leading /, no ***)")  # fmt: skip
    whole = text + "**" if text.endswith("/") else text
    parts, index = [], 0
    while index < len(whole):
        if whole.startswith("**/", index) and (index == 0 or whole[index - 1] == "/"):
            parts.append("(?:.*/)?")
            index += 3
        elif whole.startswith("**", index):
            parts.append(".*")
            index += 2
        elif whole[index] == "*":
            parts.append("[^/]*")
            index += 1
        else:
            parts.append(re.escape(whole[index]))
            index += 1
    return Pattern(text, re.compile("".join(parts), re.DOTALL))


def load_rules(path: Path, people: dict[str, Identity]) -> ReviewRules:
    """The ``reviews`` and ``pushes`` sections of the trust file; GitOpsGuardError naming the entry at fault."""
    data = document(path)
    if not isinstance(data, dict):
        raise GitOpsGuardError(f"{path}: the trust configuration must be a mapping")
    reviews, pushes = data.get("reviews") or [], data.get("pushes") or []
    if not isinstance(reviews, list) or not isinstance(pushes, list) or len(reviews) + len(pushes) > MAX_RULES:
        raise GitOpsGuardError(f"{path}: reviews and pushes must be lists (of at most {MAX_RULES} rules)")
    rules = tuple(_rule(entry, f"{path}: reviews[{i}]", people) for i, entry in enumerate(reviews))
    allowed = tuple(_push(entry, f"{path}: pushes[{i}]", people) for i, entry in enumerate(pushes))
    return ReviewRules(rules, allowed)


def _rule(entry: Any, where: str, people: dict[str, Identity]) -> Rule:
    if not isinstance(entry, dict) or set(entry) - {"paths", "approvers"}:
        raise GitOpsGuardError(f"{where}: must be a mapping with `paths` and `approvers` only")
    paths = _patterns(entry.get("paths"), f"{where}.paths")
    approvers = entry.get("approvers")
    if approvers == "any":
        return Rule(paths, anyone=True)
    if not isinstance(approvers, dict) or set(approvers) - {"users", "groups"}:
        raise GitOpsGuardError(f"{where}.approvers: must be `any`, or a mapping with `users` and/or `groups`")
    users, groups = (
        _names(approvers.get("users"), f"{where}.approvers.users"),
        _names(approvers.get("groups"), f"{where}.approvers.groups"),
    )
    unknown = sorted(users - set(people))
    if unknown:
        raise GitOpsGuardError(f"{where}.approvers.users: {', '.join(unknown)[:200]} is not among the signers")
    if not users and not groups:
        raise GitOpsGuardError(f"{where}.approvers: names nobody; write `approvers: any` to mean any approver")
    return Rule(paths, users, groups)


def _push(entry: Any, where: str, people: dict[str, Identity]) -> PushRule:
    if not isinstance(entry, dict) or set(entry) - {"user", "paths"}:
        raise GitOpsGuardError(f"{where}: must be a mapping with `user` and `paths` only")
    user = entry.get("user")
    if not isinstance(user, str) or user not in people:
        raise GitOpsGuardError(f"{where}.user: must name one of the signers (a bot with its own key)")
    return PushRule(user, _patterns(entry.get("paths"), f"{where}.paths"))


def _patterns(value: Any, where: str) -> tuple[Pattern, ...]:
    if not isinstance(value, list) or not value:
        raise GitOpsGuardError(f"{where}: must be a non-empty list of path patterns")
    return tuple(pattern(text, f"{where}[{i}]") for i, text in enumerate(value))


def _names(value: Any, where: str) -> frozenset[str]:
    if value is None:
        return frozenset()
    if not isinstance(value, list) or not all(isinstance(v, str) and 0 < len(v) <= 253 for v in value):
        raise GitOpsGuardError(f"{where}: must be a list of names")
    return frozenset(value)
