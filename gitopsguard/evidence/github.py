"""GitHub's REST API as evidence of review, shared by revisions (source/review) and grants: which pull
request a merge commit belongs to, who approved it on its head, and what its head holds. The base URL is
configurable, so GitHub Enterprise works, and so does the tests' local fake of the same wire format.

- **A merge is a pull request's** only when GitHub says so: a pull request merged into the given branch whose
  ``merge_commit_sha`` is that commit (it cannot be pushed). GitHub associates a merge commit with the pull
  request that made it; the merged head is asked too, for branches other than the default one.
- **Approvers** are the reviewers whose latest APPROVED, CHANGES_REQUESTED or DISMISSED review, on any page,
  is APPROVED on the pull request's head commit (an approval of an older commit approves nothing that came
  after it). The author's own approval is kept, so that the caller's rule refuses it as self-approval
  rather than silently ignoring it. A login the trust file does not map becomes ``github:<login>``.
- **Lists are read whole**: GitHub pages them (100 a page at most) and names the next page in a ``Link``
  header, which is followed only while it stays on the configured API's origin and path (the token goes
  with every request); more than 100 pages is refused, not read for ever.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote, urlsplit

from gitopsguard.errors import SourceError
from gitopsguard.evidence.history import History
from gitopsguard.evidence.identity import Identity

PER_PAGE = 100  # GitHub's maximum
MAX_PULL_COMMITS = 250
GITHUB_ITSELF = "web-flow"  # the committer of what GitHub's web interface makes (and signs) for a user
MAX_PAGES = 100  # 10,000 items: more is refused rather than read for ever
_SHA = re.compile(r"[0-9a-f]{40}")
_NEXT = re.compile(r'<([^>]*)>\s*;\s*rel="([^"]*)"')
Pull = dict[str, Any]  # a pull request as GitHub's REST API returns it


def login(pull: Pull) -> str:
    """The login of the pull request's author ("" when GitHub names none)."""
    return str((pull.get("user") or {}).get("login") or "")


def head_sha(pull: Pull) -> str:
    """The commit id of the pull request's head, what its reviewers saw ("" when GitHub names none)."""
    return str((pull.get("head") or {}).get("sha") or "")


class GitHubApi:
    def __init__(self, api_url: str, owner_repo: str, token: str) -> None:
        self._api, self._slug, self._token = api_url.rstrip("/"), owner_repo, token

    def merged_pull(self, history: History, merge: str, branch: str) -> Pull | None:
        """The pull request merged into ``branch`` whose merge commit is ``merge``; None when there is none."""
        if not merge:
            return None
        for commit in [merge, *history.parents(merge)[1:2]]:
            for pull in self._list(f"/repos/{self._slug}/commits/{commit}/pulls"):
                if (isinstance(pull, dict) and pull.get("merged_at") and pull.get("merge_commit_sha") == merge
                        and (pull.get("base") or {}).get("ref") == branch
                        and isinstance(pull.get("number"), int)):  # fmt: skip
                    return pull
        return None

    def author(self, pull: Pull, logins: dict[str, Identity]) -> Identity | None:
        """Who opened the pull request, as the trust file maps their login; None when it does not."""
        return logins.get(login(pull))

    def approvers(self, number: int, head: str, logins: dict[str, Identity]) -> tuple[Identity, ...]:
        """Reviewers whose latest review is APPROVED on ``head`` (see the module docstring), sorted by login."""
        latest: dict[str, dict[str, Any]] = {}
        for review in self._list(f"/repos/{self._slug}/pulls/{number}/reviews"):
            if not isinstance(review, dict):
                continue  # not a review: it approves nothing
            who = str((review.get("user") or {}).get("login") or "")
            if review.get("state") in ("APPROVED", "CHANGES_REQUESTED", "DISMISSED"):
                latest[who] = review
        found = []
        for who, review in sorted(latest.items()):
            if review.get("state") != "APPROVED" or review.get("commit_id") != head:
                continue
            identity = logins.get(who)
            found.append(identity if identity is not None else Identity(f"github:{who}"))
        return tuple(found)

    def writers(self, number: int, logins: dict[str, Identity]) -> tuple[tuple[Identity, ...], str]:
        """(the people the trust file maps who wrote or committed the pull request's commits, ""), or ((), why
        that cannot be known). A commit counts only when GitHub verified its signature for its committer: the
        committer's login then names the key's owner, and an author line is any text anyone may write."""
        commits = self._list(f"/repos/{self._slug}/pulls/{number}/commits")
        if len(commits) >= MAX_PULL_COMMITS:
            return (), f"#{number} has {MAX_PULL_COMMITS} commits or more, more than GitHub lists: who wrote them " \
                       "cannot be known; split the pull request"  # fmt: skip
        found: dict[str, Identity] = {}
        for item in commits:
            sha = str(item.get("sha") or "?")[:12] if isinstance(item, dict) else "?"
            verified = isinstance(item, dict) and ((item.get("commit") or {}).get("verification") or {}).get("verified")
            if verified is not True:
                return (), (f"commit {sha} of #{number} is not signed with a key GitHub verified for its committer, so "
                            "who wrote it is unknown; sign commits (GitHub: require signed commits)")  # fmt: skip
            names = [str((item.get(role) or {}).get("login") or "") for role in ("author", "committer")]
            signer = names[0] if names[1] == GITHUB_ITSELF else names[1]  # GitHub signs what its UI makes
            if signer not in logins:
                return (), (f"commit {sha} of #{number} was signed by GitHub account {signer[:60]!r}, whom the trust "
                            "file does not map, so who wrote it is unknown")  # fmt: skip
            for name in names:
                if name in logins:
                    found[logins[name].user] = logins[name]
        return tuple(found[user] for user in sorted(found)), ""

    def head_holds(self, history: History, pull: Pull, path: str, blob: str) -> bool:
        """Whether the pull request's head, what its reviewers saw, holds exactly ``blob`` at ``path``. A merge
        can hold more than its head: lines pushed to the base meanwhile, merged in without anyone's review."""
        head = head_sha(pull)
        if not _SHA.fullmatch(head):
            return False
        if history.has_commit(head):
            return history.blobs([head], path) == [blob]
        return self._blob_on_github(head, path) == blob  # a squash merge: the head is not in the clone

    def _blob_on_github(self, head: str, path: str) -> str:
        """The blob id of ``path`` in commit ``head`` as GitHub holds it ("Get repository content"); "" when it
        is absent there or not a regular file."""
        where = f"/repos/{self._slug}/contents/{quote(path.encode('utf-8', 'surrogateescape'), safe='/')}"
        found = self._get(f"{self._api}{where}?ref={head}", where, missing_ok=True)[0]
        if not isinstance(found, dict) or found.get("type") != "file":
            return ""
        return str(found.get("sha") or "")

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
