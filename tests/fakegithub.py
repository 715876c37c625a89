"""A local stand-in for GitHub's REST API, speaking its wire format (shapes as in GitHub's REST reference:
"List pull requests associated with a commit" and "List reviews for a pull request"), for the parts
gitopsguard reads. A merged pull request's ``merge_commit_sha`` is the commit its merge made on the base
branch (the test names it, as GitHub would have made it), and that commit is associated with the pull
request like its own commits are. It checks the bearer token like GitHub does and answers 401
"Bad credentials" otherwise.
Lists are paged as GitHub pages them ("Using pagination in the REST API"): ``per_page`` defaults to 30 and
is capped at 100, ``page`` counts from 1, and a ``Link`` header gives absolute URLs for the
``prev``/``next``/``first``/``last`` pages that exist."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

TOKEN = "ghp_test_token_never_logged"
DEFAULT_PER_PAGE, MAX_PER_PAGE = 30, 100
Answer = tuple[int, Any, dict[str, str]]  # status, JSON body, headers


def paged(base: str, path: str, items: list[Any]) -> Answer:
    """One page of ``items`` as the query asks for, with GitHub's Link header."""
    query = parse_qs(urlsplit(path).query)
    per_page = min(max(int((query.get("per_page") or [str(DEFAULT_PER_PAGE)])[0]), 1), MAX_PER_PAGE)
    page = max(int((query.get("page") or ["1"])[0]), 1)
    last = max(1, -(-len(items) // per_page))
    url = f"{base}{urlsplit(path).path}?per_page={per_page}&page="
    links = {"prev": page - 1, "next": page + 1, "first": 1, "last": last}
    shown = {rel: n for rel, n in links.items() if (rel in ("prev", "first") and page > 1) or
             (rel in ("next", "last") and page < last)}  # fmt: skip
    headers = {"Link": ", ".join(f'<{url}{n}>; rel="{rel}"' for rel, n in shown.items())} if shown else {}
    return 200, items[(page - 1) * per_page : page * per_page], headers


@dataclass
class Pull:
    number: int
    author: str
    commits: list[str]  # shas of the pull request's commits (the last one is its head)
    merged_at: str | None = "2026-11-24T10:00:00Z"
    base: str = "main"
    reviews: list[tuple[str, str, str]] = field(default_factory=list)  # (login, state, commit_id)
    merge_commit: str | None = None  # the merge (or squash) commit GitHub made on the base branch
    written: dict[str, tuple[str, str, bool]] = field(default_factory=dict)  # sha -> (author, committer, verified)

    def commit_json(self, sha: str) -> dict[str, Any]:
        """One entry of "List commits on a pull request"; by default the pull request's author wrote, committed
        and signed it (GitHub verified the signature)."""
        author, committer, verified = self.written.get(sha, (self.author, self.author, True))
        person = {"name": author, "email": f"{author}@example.com", "date": "2026-11-24T09:00:00Z"}
        return {"sha": sha, "node_id": f"C_{sha[:8]}", "commit": {
            "author": person, "committer": {**person, "name": committer, "email": f"{committer}@example.com"},
            "message": "change", "tree": {"sha": "f" * 40},
            "verification": {"verified": verified, "reason": "valid" if verified else "unsigned",
                             "signature": None, "payload": None}},
            "author": {"login": author, "type": "User"}, "committer": {"login": committer, "type": "User"},
            "parents": []}  # fmt: skip

    def associated(self, sha: str) -> bool:
        return sha in self.commits or (self.merged_at is not None and sha == self.merge_commit)

    def as_json(self, slug: str) -> dict[str, Any]:
        user = {"login": self.author, "id": abs(hash(self.author)) % 10**6, "type": "User"}
        return {"url": f"https://api.github.com/repos/{slug}/pulls/{self.number}", "id": 1000 + self.number,
                "number": self.number, "state": "closed" if self.merged_at else "open", "title": "Request access",
                "user": user, "body": "", "created_at": "2026-11-24T09:00:00Z", "updated_at": "2026-11-24T10:00:00Z",
                "closed_at": self.merged_at, "merged_at": self.merged_at, "merge_commit_sha": self.merge_commit,
                "head": {"ref": f"request-{self.number}", "sha": self.commits[-1], "user": user},
                "base": {"ref": self.base, "sha": "e" * 40}}  # fmt: skip


class FakeGitHub:
    def __init__(self, slug: str = "org/cluster-config") -> None:
        self.slug = slug
        self.pulls: list[Pull] = []
        self.requests: list[str] = []
        self.outage = False  # answer every GET with 503, as GitHub does when it is unavailable
        self.created: list[dict[str, Any]] = []
        self.contents: dict[tuple[str, str], str] = {}  # (ref, path) -> blob sha, for "Get repository content"
        self.symlinks: set[tuple[str, str]] = set()  # (ref, path) of those that are symbolic links

    def create_pull(self, path: str, authorization: str | None, body: dict[str, Any]) -> tuple[int, Any]:
        """POST /repos/{owner}/{repo}/pulls ("Create a pull request"): 201 with the new pull request."""
        self.requests.append(f"POST {path}")
        if authorization != f"Bearer {TOKEN}":
            return 401, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}
        if path != f"/repos/{self.slug}/pulls" or not {"title", "head", "base"} <= set(body):
            return 422, {
                "message": "Validation Failed",
                "errors": [],
                "documentation_url": "https://docs.github.com/rest",
            }
        number = len(self.created) + 1
        self.created.append(body)
        return 201, {"number": number, "state": "open", "title": body["title"], "body": body.get("body"),
                     "html_url": f"https://github.com/{self.slug}/pull/{number}",
                     "head": {"ref": body["head"]}, "base": {"ref": body["base"]}, "merged_at": None}  # fmt: skip

    def answer(self, path: str, authorization: str | None, base: str = "") -> Answer:
        """GET ``path`` (with its query); ``base`` is this server's URL, for the Link header."""
        self.requests.append(path)
        if self.outage:
            return 503, {"message": "Service Unavailable"}, {}
        if authorization != f"Bearer {TOKEN}":
            return 401, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}, {}
        route = urlsplit(path).path
        if m := re.fullmatch(rf"/repos/{self.slug}/commits/([0-9a-f]+)/pulls", route):
            return paged(base, path, [p.as_json(self.slug) for p in self.pulls if p.associated(m[1])])
        if m := re.fullmatch(rf"/repos/{self.slug}/contents/(.+)", route):
            return self.content(unquote(m[1]), (parse_qs(urlsplit(path).query).get("ref") or [""])[0])
        if m := re.fullmatch(rf"/repos/{self.slug}/pulls/(\d+)/commits", route):
            pull = next((p for p in self.pulls if p.number == int(m[1])), None)
            if pull is None:
                return 404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}, {}
            return paged(base, path, [pull.commit_json(sha) for sha in pull.commits][:250])  # GitHub lists 250
        if m := re.fullmatch(rf"/repos/{self.slug}/pulls/(\d+)/reviews", route):
            pull = next((p for p in self.pulls if p.number == int(m[1])), None)
            if pull is None:
                return 404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}, {}
            return paged(base, path, [
                {"id": i, "node_id": f"PRR_{i}", "user": {"login": login, "type": "User"}, "body": "",
                 "state": state, "html_url": "", "author_association": "MEMBER",
                 "submitted_at": "2026-11-24T09:30:00Z", "commit_id": commit}
                for i, (login, state, commit) in enumerate(pull.reviews, 1)])  # fmt: skip
        return 404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}, {}

    def content(self, path: str, ref: str) -> Answer:
        """GET /repos/{owner}/{repo}/contents/{path}?ref= ("Get repository content"): a file's metadata and
        blob ``sha`` (the content itself, base64, is left out here); a symbolic link is ``type: symlink``."""
        sha = self.contents.get((ref, path))
        if sha is None:
            return 404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}, {}
        kind = "symlink" if (ref, path) in self.symlinks else "file"
        return 200, {"type": kind, "encoding": "base64", "size": 300, "name": path.rsplit("/", 1)[-1],
                     "path": path, "sha": sha, "url": f"https://api.github.com/repos/{self.slug}/contents/{path}",
                     **({"target": "elsewhere.yaml"} if kind == "symlink" else {"content": ""})}, {}  # fmt: skip

    @contextmanager
    def serving(self) -> Iterator[str]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                assert isinstance(self.server, ThreadingHTTPServer)
                base = f"http://127.0.0.1:{self.server.server_port}"
                self._send(*fake.answer(self.path, self.headers.get("Authorization"), base))

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                self._send(*fake.create_pull(self.path, self.headers.get("Authorization"), body))

            def _send(self, status: int, answer: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(answer).encode()
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_port}"
        finally:
            server.shutdown()
            server.server_close()
