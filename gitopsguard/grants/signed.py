"""`signed-merge` approval: identity from SSH signatures that git itself verifies, never from names.

The evidence for a grant file is the one merge that brought its exact content (its blob) onto the branch:

- the merge is on the branch's first-parent chain, the blob is absent from its first parent and present in it,
  and every first-parent commit from it to the head holds the same blob (nothing changed it since);
- the merge merges one branch, and is signed by a trusted key (the approver);
- the merged branch holds the same blob (the merge did not edit what was asked), and the commit that put it
  there is a plain commit the merge brought (not one already on the branch before), signed by the requester.

The approval time is that merge commit's committer time, which the signature covers. A file that is a
symbolic link is refused: its target could change in a commit nobody reviews as a grant.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from gitopsguard.evidence.history import REGULAR_MODES, SYMLINK_MODE, History
from gitopsguard.evidence.signatures import Signatures
from gitopsguard.evidence.trust import TrustedSigner, github_logins, load_trust
from gitopsguard.grants.approved import approved_policy_files
from gitopsguard.grants.load import parse_escalation_policies
from gitopsguard.grants.model import Approval, EscalationPolicy, Identity

__all__ = ["SignedMergeVerifier", "TrustedSigner", "github_logins", "load_trust"]


class SignedMergeVerifier:
    def __init__(self, repository: Path, signers: tuple[TrustedSigner, ...], state_dir: Path) -> None:
        self._repo = repository
        self._people = {s.identity.user: s.identity for s in signers}
        self._admins = frozenset(s.identity.user for s in signers if s.admin)
        self._signatures = Signatures(repository, signers, state_dir)
        self._git = self._signatures.git
        self.history = History(self._git)

    def approval(self, path: str) -> Approval:
        """The evidence for the grant file at ``path`` as the branch head has it."""
        head = self.history.entry("HEAD", path)
        if not head.blob:
            return Approval(None, (), None, f"{path}: not found in the branch history")
        if head.mode not in REGULAR_MODES:
            kind = "a symbolic link" if head.mode == SYMLINK_MODE else f"not a regular file (mode {head.mode})"
            return Approval(None, (), None, f"{path}: is {kind}; a grant must be a regular file")
        merge = self.history.run_start("HEAD", path, head.blob)
        if merge is None:  # cannot happen: HEAD holds the blob
            return Approval(None, (), None, f"{path}: not found in the branch history")
        parents = self.history.parents(merge)
        if len(parents) < 2:
            return Approval(self._signer(merge), (), None, f"pushed straight to the branch in {merge[:12]}: a grant "
                                                           "needs a merge (the review)")  # fmt: skip
        if len(parents) > 2:
            return Approval(None, (), None, f"the merge {merge[:12]} merges more than one branch; a grant needs "
                                            "a merge of its own request branch")  # fmt: skip
        approver = self._signer(merge)
        if approver is None:
            return Approval(None, (), None, f"the merge {merge[:12]} is not signed by a trusted key")
        request, problem = self._request(merge, parents, path, head.blob)
        if problem:
            return Approval(None, (approver,), None, problem)
        approved_at = self._commit_time(merge)
        if approved_at is None:
            return Approval(None, (approver,), None, f"the merge {merge[:12]} has a commit time no clock can hold")
        return Approval(self._signer(request), (approver,), approved_at, merge=merge)

    def _request(self, merge: str, parents: list[str], path: str, blob: str) -> tuple[str, str]:
        """(the commit on the merged branch that made this blob, "") or ("", why the merge does not count)."""
        request = self.history.run_start(parents[1], path, blob)
        if request is None:
            return "", (f"the merge {merge[:12]} changed the file itself: what it approved is not what was "
                        "requested and signed on the branch")  # fmt: skip
        if len(self.history.parents(request)) != 1:
            return "", f"the request {request[:12]} is a merge or a root commit; sign a plain commit that adds it"
        if self.history.is_ancestor(request, parents[0]):
            return "", (f"the request {request[:12]} was already on the branch before the merge {merge[:12]}: "
                        "that merge did not bring it (an old request does not come back)")  # fmt: skip
        return request, ""

    def _commit_time(self, commit: str) -> datetime | None:
        try:
            return datetime.fromtimestamp(int(self._git("log", "-1", "--format=%ct", commit)), UTC)
        except (ValueError, OverflowError, OSError):
            return None  # a committer date is whatever the committer wrote

    def policies(self, checkout: Path) -> dict[str, EscalationPolicy]:
        """The escalation policies in force: each file as an administrator last approved it (see approved.py).
        ``checkout`` is not read: the working tree holds what was pushed, not what was approved."""
        return parse_escalation_policies(approved_policy_files(self.history, self._by_admin))

    def _by_admin(self, commit: str, path: str) -> bool:
        """The administrator's signature covers the commit's whole tree, so ``path`` needs no check of its own."""
        signer = self._signer(commit)
        return signer is not None and signer.user in self._admins

    def blob(self, path: str) -> str:
        """The git blob id of the file at the branch head (an edited grant gets a new one)."""
        return self._git("rev-parse", f"HEAD:{path}")

    def _signer(self, commit: str) -> Identity | None:
        return self._signatures.signer(commit)
