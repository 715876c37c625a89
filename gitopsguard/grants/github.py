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

Lists are read whole: GitHub pages them (100 a page at most) and names the next page in a ``Link`` header,
which is followed only while it stays on the configured API's origin (the token goes with every request).
Each reviewer's latest APPROVED, CHANGES_REQUESTED or DISMISSED review, on any page, decides.
Once a grant is ACTIVE, a review added later only matters when it withdraws the approval of someone the grant
was activated on (decide.py): a stranger's approval on the merged pull request revokes nothing.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from gitopsguard.errors import SourceError
from gitopsguard.evidence.history import REGULAR_MODES, SYMLINK_MODE, Git, History
from gitopsguard.grants.approved import approved_policy_files
from gitopsguard.grants.load import parse_escalation_policies
from gitopsguard.grants.model import Approval, EscalationPolicy, Identity

PER_PAGE = 100  # GitHub's maximum
MAX_PAGES = 100  # 10,000 items: more is refused rather than read for ever
_SHA = re.compile(r"[0-9a-f]{40}")
_NEXT = re.compile(r'<([^>]*)>\s*;\s*rel="([^"]*)"')


class GitHubApprovals:
    def __init__(
        self, repository: Path, *, api_url: str, owner_repo: str, branch: str, token: str,
        logins: dict[str, Identity], admins: frozenset[str] = frozenset(),
    ) -> None:  # fmt: skip
        self._repo, self._api, self._slug, self._branch = repository, api_url.rstrip("/"), owner_repo, branch
        self._token, self._logins, self._admins = token, logins, admins
        self._git = Git(repository)
        self.history = History(self._git)
        self._admin_merges: dict[str, dict[str, Any] | None] = {}  # commit -> its pull request, if admin-approved

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
        pull = self._merged_pull(merge)
        if pull is None:
            return Approval(None, (), None, f"{path}: brought onto the branch by {merge[:12]}, which is no merged pull "
                                            f"request's merge into {self._branch} (pushed straight to the branch, "
                                            "or merged outside a reviewed pull request); ask in a new pull "
                                            "request")  # fmt: skip
        if not self._reviewed(pull, path, head.blob):
            return Approval(None, (), None, f"{path}: the merge {merge[:12]} of pull request #{pull['number']} is "
                                            "not the file its reviewed head holds (the merge brought other changes "
                                            "to it); ask again in a new pull request")  # fmt: skip
        author = str((pull.get("user") or {}).get("login") or "")
        requester = self._logins.get(author)
        head_sha = str((pull.get("head") or {}).get("sha") or "")
        approvers = self._approvers(pull["number"], head_sha)
        merged_at = datetime.fromisoformat(str(pull["merged_at"]).replace("Z", "+00:00"))
        if requester is None:
            return Approval(None, (), None, f"pull request #{pull['number']} was opened by {author!r}, "
                                            "whom the trust configuration does not map to anyone")  # fmt: skip
        return Approval(requester, approvers, merged_at, merge=merge)

    def _merged_pull(self, merge: str) -> dict[str, Any] | None:
        """The pull request merged into our branch whose merge commit is ``merge``; None when there is none.
        GitHub associates a merge commit with the pull request that made it; the merged head is asked too,
        for branches other than the default one."""
        if not merge:
            return None
        for commit in [merge, *self.history.parents(merge)[1:2]]:
            for pull in self._list(f"/repos/{self._slug}/commits/{commit}/pulls"):
                if (isinstance(pull, dict) and pull.get("merged_at") and pull.get("merge_commit_sha") == merge
                        and (pull.get("base") or {}).get("ref") == self._branch
                        and isinstance(pull.get("number"), int)):  # fmt: skip
                    return pull
        return None

    def _reviewed(self, pull: dict[str, Any], path: str, blob: str) -> bool:
        """Whether the pull request's head, what its reviewers saw, holds exactly ``blob`` at ``path``. A merge
        can hold more than its head: lines pushed to the base meanwhile, merged in without anyone's review."""
        head = str((pull.get("head") or {}).get("sha") or "")
        if not _SHA.fullmatch(head):
            return False
        if self.history.has_commit(head):
            return self.history.blobs([head], path) == [blob]
        return self._blob_on_github(head, path) == blob  # a squash merge: the head is not on our branch

    def _blob_on_github(self, head: str, path: str) -> str:
        """The blob id of ``path`` in commit ``head`` as GitHub holds it ("Get repository content"); "" when it
        is absent there or not a regular file."""
        where = f"/repos/{self._slug}/contents/{quote(path, safe='/')}"
        found = self._get(f"{self._api}{where}?ref={head}", where, missing_ok=True)[0]
        if not isinstance(found, dict) or found.get("type") != "file":
            return ""
        return str(found.get("sha") or "")

    def _approvers(self, number: int, head: str) -> tuple[Identity, ...]:
        """Reviewers whose latest review is APPROVED on the head commit. An approval by the author is kept,
        so that the decision refuses it as self-approval rather than silently ignoring it."""
        latest: dict[str, dict[str, Any]] = {}
        for review in self._list(f"/repos/{self._slug}/pulls/{number}/reviews"):
            if not isinstance(review, dict):
                continue  # not a review: it approves nothing
            login = str((review.get("user") or {}).get("login") or "")
            if review.get("state") in ("APPROVED", "CHANGES_REQUESTED", "DISMISSED"):
                latest[login] = review
        found = []
        for login, review in sorted(latest.items()):
            if review.get("state") != "APPROVED" or review.get("commit_id") != head:
                continue
            identity = self._logins.get(login)
            found.append(identity if identity is not None else Identity(f"github:{login}"))
        return tuple(found)

    def _list(self, path: str) -> list[Any]:
        """Every item of a paged list, in GitHub's order (oldest first for reviews)."""
        url: str | None = f"{self._api}{path}?per_page={PER_PAGE}"
        items: list[Any] = []
        for _ in range(MAX_PAGES):
            if url is None:
                return items
            page, link = self._get(url, path)
            if not isinstance(page, list):
                kind = type(page).__name__
                raise SourceError(f"{self._api}{path}: GitHub answered a {kind}, not a list; check api_url")
            items += page
            url = self._next(link, path)
        if url is None:
            return items
        raise SourceError(f"{self._api}{path}: more than {MAX_PAGES} pages of {PER_PAGE}; refusing to read on")

    def _next(self, link: str, path: str) -> str | None:
        """The Link header's rel="next" URL, if any; it must stay on our API (scheme, host and path prefix)."""
        url: str | None = next((str(u) for u, rels in _NEXT.findall(link) if "next" in rels.split()), None)
        if url is None:
            return None
        ours, theirs = urlsplit(self._api), urlsplit(url)
        inside = (theirs.path + "/").startswith(ours.path.rstrip("/") + "/")
        if (theirs.scheme, theirs.netloc) != (ours.scheme, ours.netloc) or not inside:
            raise SourceError(f"{self._api}{path}: the next page is on {theirs.scheme}://{theirs.netloc}, not on the "
                              "configured API; refusing to send the token there (check api_url)")  # fmt: skip
        return url

    def _get(self, url: str, path: str, *, missing_ok: bool = False) -> tuple[Any, str]:
        """(the JSON answer, its Link header); (None, "") for a 404 when ``missing_ok``."""
        request = urllib.request.Request(url, headers={  # noqa: S310 (https or the test fake)
            "Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28",
            "Authorization": f"Bearer {self._token}", "User-Agent": "gitopsguard"})  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=20) as response:  # noqa: S310
                return json.loads(response.read()), str(response.headers.get("Link") or "")
        except urllib.error.HTTPError as error:
            if missing_ok and error.code == 404:
                return None, ""
            raise SourceError(f"{self._api}{path}: GitHub answered HTTP {error.code}") from None
        except (urllib.error.URLError, OSError, ValueError) as error:
            raise SourceError(f"{self._api}: GitHub API unreachable ({type(error).__name__})") from None

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
            pull = self._merged_pull(commit)
            found = None
            if pull is not None:
                author = self._logins.get(str((pull.get("user") or {}).get("login") or ""))
                head = str((pull.get("head") or {}).get("sha") or "")
                if any(a.user in self._admins and a != author for a in self._approvers(pull["number"], head)):
                    found = pull
            self._admin_merges[commit] = found
        pull = self._admin_merges[commit]
        return pull is not None and self._reviewed(pull, path, self.history.blobs([commit], path)[0])

    def blob(self, path: str) -> str:
        return self._git("rev-parse", f"HEAD:{path}")
