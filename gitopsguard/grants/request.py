"""`gitopsguard request`: write a grant file on a new branch, commit it (signed when a key is given), push
it, and open the pull request through GitHub's API when a token is configured (else print where to)."""

from __future__ import annotations

import json
import re
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import yaml

from gitopsguard.errors import SourceError
from gitopsguard.grants.load import GRANT_DIR, duration
from gitopsguard.model import API_VERSION


@dataclass(frozen=True)
class Request:
    user: str
    policy: str
    role: str
    role_kind: str
    namespace: str
    duration: str
    reason: str


def grant_text(request: Request, name: str) -> str:
    spec = {"policy": request.policy, "subject": {"kind": "User", "name": request.user},
            "role": {"kind": request.role_kind, "name": request.role}, "duration": request.duration,
            "reason": request.reason}  # fmt: skip
    if request.namespace:
        spec["namespace"] = request.namespace
    return yaml.safe_dump({"apiVersion": API_VERSION, "kind": "Grant", "metadata": {"name": name}, "spec": spec},
                          sort_keys=False)  # fmt: skip


def submit(
    request: Request, repo: Path, *, base: str = "main", signing_key: Path | None = None,
    github: tuple[str, str, str] | None = None,
) -> str:  # fmt: skip
    """Push the request on a new branch; returns the pull request's URL, or where to open one."""
    duration(request.duration, "--for")  # a bad duration is refused before anything is written
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    name = re.sub(r"[^a-z0-9-]+", "-", f"{request.user}-{request.policy}-{stamp}".lower())
    branch = f"access/{name}"
    _git(repo, "fetch", "-q", "origin", base)
    _git(repo, "checkout", "-q", "-b", branch, f"origin/{base}")
    path = repo / GRANT_DIR / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(grant_text(request, name))
    _git(repo, "add", str(path.relative_to(repo)))
    signing = ["-c", "gpg.format=ssh", "-c", f"user.signingkey={signing_key}"] if signing_key else []
    scope = request.namespace or "cluster-wide"
    message = f"Request {request.role} {scope} for {request.duration}: {request.reason}"
    _git(repo, *signing, "commit", "-q", *(["-S"] if signing_key else []), "-m", message)
    _git(repo, "push", "-q", "origin", branch)
    if github is not None:
        api_url, slug, token = github
        return _open_pull(api_url, slug, token, branch, base, request)
    return _compare_url(_git(repo, "remote", "get-url", "origin"), base, branch)


def _open_pull(api_url: str, slug: str, token: str, branch: str, base: str, request: Request) -> str:
    body = {"title": f"Access: {request.user} -> {request.role} ({request.namespace or 'cluster-wide'}, "
                     f"{request.duration})", "head": branch, "base": base, "body": request.reason}  # fmt: skip
    headers = {"Accept": "application/vnd.github+json", "Authorization": f"Bearer {token}",
               "X-GitHub-Api-Version": "2022-11-28", "User-Agent": "gitopsguard"}  # fmt: skip
    url = f"{api_url.rstrip('/')}/repos/{slug}/pulls"
    sent = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(sent, timeout=20) as response:  # noqa: S310
            return str(json.loads(response.read())["html_url"])
    except urllib.error.HTTPError as error:
        raise SourceError(f"{api_url}: opening the pull request failed: HTTP {error.code}; the branch {branch} "
                          "is pushed, open it by hand") from None  # fmt: skip
    except (urllib.error.URLError, OSError, ValueError, KeyError) as error:
        raise SourceError(f"{api_url}: GitHub API unreachable ({type(error).__name__}); the branch {branch} "
                          "is pushed, open the pull request by hand") from None  # fmt: skip


def _compare_url(remote: str, base: str, branch: str) -> str:
    match = re.match(r"^(?:https://|git@)github\.com[/:]([^/]+/[^/]+?)(?:\.git)?$", remote)
    if match:
        return f"https://github.com/{match[1]}/compare/{base}...{branch}?expand=1"
    return f"pushed {branch}; open a pull request from it into {base}"


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "--literal-pathspecs", *args], cwd=repo, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SourceError(f"{repo}: git {args[0] if args[0] != '-c' else 'commit'} failed: {done.stderr.strip()[:300]}")
    return done.stdout.strip()
