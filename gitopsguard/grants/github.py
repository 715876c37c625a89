"""`github` approval: who asked and who approved come from the pull request that brought the grant in, as
GitHub's REST API reports it (commit -> pulls, then reviews). The base URL is configurable, so GitHub
Enterprise works, and so do the tests' local fake of the same wire format.

The pull request is the one whose merge brought the grant file's exact blob onto the branch: walking first
parents back from the head while the file holds that blob, the last commit walked must be the pull request's
``merge_commit_sha`` (as GitHub reports it; it cannot be pushed). A grant counts as approved when that pull
request is merged into the tracked branch, its author maps to the grant's subject, and it has enough
APPROVED reviews on its head commit from approvers who are not the author. The approval time is the pull
request's ``merged_at``.

Escalation policies are privileged: each policy file is in force as of the last first-parent commit that
changed it and is the merge of a pull request approved on its head by an administrator named in the trust
file (not the author); a push, or a pull request no administrator approved, leaves the earlier version in
force, and a file no administrator approved does not exist (the walk is approved.py's, as in signed-merge).

What GitHub says (the pull request of a merge, its approvers on the head, what the head holds; every page
read, the token kept on the configured API) comes from evidence/github.py, shared with revisions.
Once a grant is ACTIVE, a review added later only matters when it withdraws the approval of someone the grant
was activated on (decide.py): a stranger's approval on the merged pull request revokes nothing.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from gitopsguard.evidence.github import GitHubApi, Pull, head_sha, login
from gitopsguard.evidence.history import REGULAR_MODES, SYMLINK_MODE, Git, History
from gitopsguard.grants.approved import approved_policy_files
from gitopsguard.grants.load import parse_escalation_policies
from gitopsguard.grants.model import Approval, EscalationPolicy, Identity


class GitHubApprovals:
    def __init__(
        self, repository: Path, *, api_url: str, owner_repo: str, branch: str, token: str,
        logins: dict[str, Identity], admins: frozenset[str] = frozenset(),
    ) -> None:  # fmt: skip
        self._repo, self._branch, self._logins, self._admins = repository, branch, logins, admins
        self._github = GitHubApi(api_url, owner_repo, token)
        self._git = Git(repository)
        self.history = History(self._git)
        self._admin_merges: dict[str, Pull | None] = {}  # commit -> its pull request, if admin-approved

    def approval(self, path: str) -> Approval:
        """The pull request whose merge brought the file's exact blob onto the branch: the first-parent commit
        where the blob arrived must be that pull request's ``merge_commit_sha``. Following `git log -- path`
        instead would walk into an unreviewed merge's second parent and borrow an old pull request."""
        head = self.history.entry("HEAD", path)
        if not head.blob:
            return Approval(None, (), None, f"{path}: not found in the branch history")
        if head.mode not in REGULAR_MODES:
            kind = "a symbolic link" if head.mode == SYMLINK_MODE else f"not a regular file (mode {head.mode})"
            return Approval(None, (), None, f"{path}: is {kind}; a grant must be a regular file")
        merge = self.history.run_start("HEAD", path, head.blob) or ""
        pull = self._github.merged_pull(self.history, merge, self._branch)
        if pull is None:
            return Approval(None, (), None, f"{path}: brought onto the branch by {merge[:12]}, which is no merged pull "
                                            f"request's merge into {self._branch} (pushed straight to the branch, "
                                            "or merged outside a reviewed pull request); ask in a new pull "
                                            "request")  # fmt: skip
        if not self._github.head_holds(self.history, pull, path, head.blob):
            return Approval(None, (), None, f"{path}: the merge {merge[:12]} of pull request #{pull['number']} is "
                                            "not the file its reviewed head holds (the merge brought other changes "
                                            "to it); ask again in a new pull request")  # fmt: skip
        requester = self._github.author(pull, self._logins)
        approvers = self._github.approvers(pull["number"], head_sha(pull), self._logins)
        merged_at = datetime.fromisoformat(str(pull["merged_at"]).replace("Z", "+00:00"))
        if requester is None:
            return Approval(None, (), None, f"pull request #{pull['number']} was opened by {login(pull)!r}, "
                                            "whom the trust configuration does not map to anyone")  # fmt: skip
        return Approval(requester, approvers, merged_at, merge=merge)

    def policies(self, checkout: Path) -> dict[str, EscalationPolicy]:
        """The escalation policies in force: each file as of the last first-parent commit that changed it and is
        the merge of a pull request an administrator approved (see approved.py). ``checkout`` is not read:
        the working tree holds what was pushed, not what was approved."""
        return parse_escalation_policies(approved_policy_files(self.history, self._by_admin))

    def _by_admin(self, commit: str, path: str) -> bool:
        """Whether ``commit`` is the merge of a pull request whose head an administrator approved (each
        reviewer's latest review decides; the author's own approval does not count), and whose head holds
        ``path`` exactly as the merge does."""
        if commit not in self._admin_merges:
            pull = self._github.merged_pull(self.history, commit, self._branch)
            found = None
            if pull is not None:
                author = self._github.author(pull, self._logins)
                approvers = self._github.approvers(pull["number"], head_sha(pull), self._logins)
                if any(a.user in self._admins and a != author for a in approvers):
                    found = pull
            self._admin_merges[commit] = found
        pull = self._admin_merges[commit]
        if pull is None:
            return False
        return self._github.head_holds(self.history, pull, path, self.history.blobs([commit], path)[0])

    def blob(self, path: str) -> str:
        return self._git("rev-parse", f"HEAD:{path}")
