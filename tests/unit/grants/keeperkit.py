"""A grant keeper over a real signed repository (real git, real ssh-keygen) with an in-memory binder and store:
what the keeper decides and binds, without a cluster. The binder keeps exactly the bodies the keeper makes."""

from __future__ import annotations

from datetime import datetime

from gitopsguard.grants.bindings import Binder, binding_body
from gitopsguard.grants.keeper import GrantKeeper
from gitopsguard.grants.model import Grant
from gitopsguard.grants.signed import SignedMergeVerifier, load_trust
from gitopsguard.grants.store import Entry, GrantStore, Kept
from gitopsguard.model import KubeObject
from tests.signedrepo import SignedRepo


class MemoryBinder(Binder):
    """The keeper's binder without a cluster: it keeps the bodies it is given (no API client: every method
    the keeper calls is overridden here)."""

    def __init__(self) -> None:  # no super().__init__(): there is no API server to hold
        self.bindings: dict[str, KubeObject] = {}

    def bind(self, grant: Grant, expires: datetime) -> str | None:
        body = binding_body(grant, expires)
        self.bindings[body["metadata"]["name"]] = body
        return None

    def listed(self) -> list[KubeObject]:
        return [dict(body) for body in self.bindings.values()]

    def unbind(self, body: KubeObject) -> str | None:
        self.bindings.pop(body["metadata"]["name"], None)
        return None

    def subjects(self) -> set[tuple[str, str, str]]:
        """(binding kind, namespace or "", subject name) of every binding in place."""
        return {(b["kind"], b["metadata"].get("namespace", ""), s["name"]) for b in self.bindings.values()
                for s in b["subjects"]}  # fmt: skip


class MemoryStore(GrantStore):
    """The keeper's store in memory (every method the keeper calls is overridden here)."""

    namespace = "memory"

    def __init__(self, kept: Kept | None = None) -> None:
        self.kept = kept or Kept()

    def read(self) -> Kept:
        return self.kept

    def save(self, entries: dict[str, Entry], commit: str | None = None, history: str | None = None) -> int:
        self.kept = Kept(dict(entries), commit, history)
        return 0


def keeper() -> tuple[GrantKeeper, MemoryBinder]:
    binder = MemoryBinder()
    return GrantKeeper(binder, MemoryStore()), binder


def sync(repo: SignedRepo, keeper: GrantKeeper) -> list[str]:
    verifier = SignedMergeVerifier(repo.work, load_trust(repo.trust), repo.root / "state")
    head = repo.git("rev-parse", "HEAD")
    return [f"{t.grant}: {t.event}: {t.detail}" for t in keeper.sync(repo.work, verifier, repo.blob_of, head, "main")]
