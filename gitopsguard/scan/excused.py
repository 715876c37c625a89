"""Which children each controller answers for, so that they are judged again when it changes.

A child excused because its controller has the same standing findings stays excused only while the
controller does: a tenant may fix the DaemonSet that is reported (or about to be deleted) and keep the
privileged Pod that named it. The child itself sends no event then, so the controller's change must
bring its children back to judgement. Only keys are kept (a cluster holds many Pods), never bodies.
"""

from __future__ import annotations

from dataclasses import dataclass

from gitopsguard.model import KubeObject


@dataclass(frozen=True)
class ChildKey:
    uid: str
    api_version: str
    kind: str
    namespace: str
    name: str


class Excused:
    def __init__(self) -> None:
        self._children: dict[str, dict[str, ChildKey]] = {}  # controller uid -> child uid -> child
        self._prints: dict[str, str] = {}  # controller uid -> its fingerprint when it excused them
        self._owner_of: dict[str, str] = {}  # child uid -> controller uid

    def add(self, owner: KubeObject, owner_print: str, child: KubeObject) -> None:
        owner_uid = str((owner.get("metadata") or {}).get("uid") or "")
        metadata = child.get("metadata") or {}
        key = ChildKey(str(metadata.get("uid") or ""), str(child.get("apiVersion") or ""),
                       str(child.get("kind") or ""), str(metadata.get("namespace") or ""),
                       str(metadata.get("name") or ""))  # fmt: skip
        if not owner_uid or not key.uid:
            return
        self.drop(key.uid)
        if self._prints.get(owner_uid, owner_print) != owner_print:  # it changed since: judge them all again
            owner_print = ""
        self._prints[owner_uid] = owner_print
        self._children.setdefault(owner_uid, {})[key.uid] = key
        self._owner_of[key.uid] = owner_uid

    def changed(self, uid: str, owner_print: str | None) -> list[ChildKey]:
        """The children ``uid`` excused, when its fingerprint is now ``owner_print`` (None: it is gone) and
        that differs from when it excused them; they are forgotten here (judging them records them again)."""
        if uid not in self._prints or self._prints[uid] == owner_print:
            return []
        del self._prints[uid]
        children = list(self._children.pop(uid, {}).values())
        for child in children:
            self._owner_of.pop(child.uid, None)
        return children

    def drop(self, child_uid: str) -> None:
        owner_uid = self._owner_of.pop(child_uid, None)
        if owner_uid is not None:
            self._children.get(owner_uid, {}).pop(child_uid, None)

    def clear(self) -> None:
        self._children.clear()
        self._prints.clear()
        self._owner_of.clear()
