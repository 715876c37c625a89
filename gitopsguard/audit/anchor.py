"""The audit chain's head, anchored in the cluster: ConfigMap ``gitopsguard-system/gitopsguard-audit-anchor``.

Every append, on any replica, moves the head with a write conditioned on the ConfigMap's resourceVersion
(``cluster/configmaps.py``): two replicas racing cannot both extend record N, the loser builds its records
again onto the winner's. So all replicas extend one chain, and a new leader or a restarted process continues
from the anchor, not from whatever file it finds.

The anchor holds the head (``SEQ:HASH``), who wrote it, and the records not yet known written out (gzip, in
``binaryData``): records are anchored first and written out (file, standard output) after, so a crash or a
failed write-out leaves them in the anchor, from where the next append writes them out too and ``audit
verify`` reads them. A writer lets records go from the batch only once it has written out every one.

It also names the last ATTEMPTS writes (a random id each, and the head each reached): a writer whose write's
answer was lost finds there whether the write was applied, instead of anchoring the same entries twice.

Only the controller's account (and cluster administrators) may write ``gitopsguard-system``; someone who holds
a copy of the log but not this ConfigMap can edit, cut or rewrite the copy (recomputing every hash), and the
copy then no longer reaches the anchored head.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

from gitopsguard.audit.record import GENESIS, AuditRecord, decode, encode
from gitopsguard.cluster.configmaps import ConfigMapStore, Content, Packed, Stored, damaged
from gitopsguard.cluster.inventory import CONTROLLER_NAMESPACE
from gitopsguard.cluster.rest import RawApi
from gitopsguard.errors import ClusterError, GitOpsGuardError

ANCHOR_NAME = "gitopsguard-audit-anchor"
_HEAD = re.compile(r"(\d{1,18}):([0-9a-f]{64})")
_ATTEMPT = re.compile(r"([0-9a-f]{16}):(\d{1,18})")
ATTEMPTS = 64  # writes the anchor remembers: a writer re-reads it within seconds of losing an answer
_LABELS = {"app.kubernetes.io/name": "gitopsguard", "app.kubernetes.io/component": "audit-anchor"}


@dataclass(frozen=True)
class Head:
    """A record of the chain, by number and hash: what a copy of the log must reach."""

    seq: int
    hash: str

    def text(self) -> str:
        return f"{self.seq}:{self.hash}"

    @classmethod
    def parse(cls, text: str, where: str) -> Head:
        matched = _HEAD.fullmatch(text.strip())
        if not matched:
            raise GitOpsGuardError(f"{where}: expected SEQ:HASH (a number, a colon, 64 hex digits), not {text[:80]!r}")
        return cls(int(matched.group(1)), matched.group(2))


GENESIS_HEAD = Head(0, GENESIS)


@dataclass(frozen=True)
class Anchor:
    """The anchored head, who moved it there, and the records of that append (oldest first)."""

    head: Head
    writer: str
    batch: tuple[AuditRecord, ...] = ()
    attempts: tuple[tuple[str, int], ...] = ()  # (attempt id, the head's seq it anchored), oldest first

    def landed(self, attempts: Collection[str]) -> tuple[str, int] | None:
        """Which of ``attempts`` was applied, with the head's seq it reached; None when none was (as far as the
        last ATTEMPTS writes tell)."""
        return next(((attempt, seq) for attempt, seq in self.attempts if attempt in attempts), None)

    def saved(self) -> str:
        """The anchor as a file keeps it (``audit anchor > FILE``; ``audit verify --anchor FILE``)."""
        return json.dumps({"seq": self.head.seq, "hash": self.head.hash, "writer": self.writer}) + "\n"


def load_saved(path: Path) -> Head:
    """The head a saved anchor file holds: the JSON ``audit anchor`` prints, or ``SEQ:HASH``."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise GitOpsGuardError(
            f"{path}: cannot read the saved anchor ({error}); give the file `audit anchor` wrote"
        ) from error
    try:
        raw = json.loads(text)
    except (ValueError, RecursionError):  # not JSON (or nested past the parser): the SEQ:HASH form, or refused
        return Head.parse(text, str(path))
    if not isinstance(raw, dict) or type(raw.get("seq")) is not int or not isinstance(raw.get("hash"), str):
        raise GitOpsGuardError(f"{path}: not a saved anchor (expected the JSON `gitopsguard audit anchor` prints)")
    return Head.parse(f"{raw['seq']}:{raw['hash']}", str(path))


class AnchorStore:
    """The anchor ConfigMap, read and moved forward through the one ConfigMap store. Safe between threads."""

    def __init__(self, raw: RawApi, namespace: str = CONTROLLER_NAMESPACE, name: str = ANCHOR_NAME) -> None:
        self._store, self.name = ConfigMapStore(raw, namespace), name

    @property
    def where(self) -> str:
        return self._store.where(self.name)

    def read(self) -> Anchor | None:
        """The anchor, None when there is none yet; a ConfigMap that is not one raises ClusterError."""
        return self._parse(self._store.read(self.name))

    def advance(
        self, writer: str, build: Callable[[Anchor | None], tuple[AuditRecord, ...]], attempt: str = ""
    ) -> tuple[Anchor | None, Anchor]:
        """Anchor the batch ``build`` makes onto the current anchor (None: there is none); on a conflict it is
        built again onto the fresh one. ``attempt`` (16 hex digits) is remembered with the head it reached.
        (the anchor before, the anchor now)."""
        built: list[tuple[Anchor | None, Anchor]] = []

        def change(current: Stored | None) -> Content:
            before = self._parse(current)
            records = build(before)
            head = Head(records[-1].seq, records[-1].hash)
            attempts = (*(before.attempts if before else ()), *([(attempt, head.seq)] if attempt else []))
            after = Anchor(head, writer, records, attempts[-ATTEMPTS:])
            built.append((before, after))
            return _content(after)

        self._store.update(self.name, change)
        return built[-1]

    def _parse(self, stored: Stored | None) -> Anchor | None:
        if stored is None:
            return None
        data = stored.content.data
        try:
            head = Head.parse(str(data.get("head", "")), f"{self.where} data.head")
        except GitOpsGuardError as error:
            raise damaged(self.where, str(error)) from error
        lines = (stored.blob("batch") or b"").splitlines()
        try:
            batch = tuple(decode(line, f"{self.where} batch line {n}") for n, line in enumerate(lines, start=1))
        except GitOpsGuardError as error:
            raise damaged(self.where, str(error)) from error
        if batch and Head(batch[-1].seq, batch[-1].hash) != head:
            raise damaged(self.where, "its head is not the last record it holds")
        attempts = tuple(_ATTEMPT.fullmatch(item) for item in str(data.get("attempts", "")).split())
        if not all(attempts):
            raise damaged(self.where, "data.attempts is not a list of ID:SEQ")
        return Anchor(
            head, str(data.get("writer", "")), batch, tuple((m.group(1), int(m.group(2))) for m in attempts if m)
        )


def _content(anchor: Anchor) -> Content:
    lines = b"".join(encode(record) for record in anchor.batch)
    attempts = " ".join(f"{attempt}:{seq}" for attempt, seq in anchor.attempts)
    data = {"head": anchor.head.text(), "writer": anchor.writer, "attempts": attempts}
    return Content(data, {"batch": Packed.of(lines)}, _LABELS)


def anchor_error(where: str, error: ClusterError) -> GitOpsGuardError:
    return GitOpsGuardError(
        f"{where}: cannot anchor the audit log ({error}); nothing was recorded. Check that the controller may "
        "get, create and update this ConfigMap (manifests/controller-rbac.yaml) and that the API server answers"
    )
