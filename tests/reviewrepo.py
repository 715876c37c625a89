"""A real git repository whose people sign with their own SSH keys, and a trust file with review rules, for
the tests of reviewed revisions (issue 20)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypedDict

import yaml
from typing_extensions import Unpack

from gitopsguard.evidence.github import GitHubApi
from gitopsguard.evidence.trust import github_logins, load_trust
from gitopsguard.source.review import Forge, Reviewer, ReviewMode, ReviewSettings
from gitopsguard.source.rules import load_rules
from tests.fakegithub import TOKEN, FakeGitHub
from tests.signedrepo import SignedRepo

PEOPLE = {
    "alice": ["team-shop"],
    "bob": ["team-shop", "shop-leads"],
    "carol": ["security-reviewers"],
    "dave": ["shop-leads"],
    "image-bot": [],
}
RULES = {
    "reviews": [
        {"paths": ["policies/", "access/policies/"], "approvers": {"groups": ["security-reviewers"]}},
        {"paths": ["apps/shop/"], "approvers": {"groups": ["shop-leads"]}},
        {"paths": ["**"], "approvers": "any"},
    ],
    "pushes": [{"user": "image-bot", "paths": ["clusters/dev/image-tags.yaml"]}],
}


class ReviewOptions(TypedDict, total=False):
    """The keywords of ReviewSettings that a test may set; the rest come from the repository."""

    branch: str
    trust_from: str | None
    forge: Forge | None


class ReviewRepo(SignedRepo):
    """SignedRepo with more people (and mallory, whom the trust file does not know) and review rules."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, "shop")
        for person in [p for p in PEOPLE if not (self.keys / p).exists()]:
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", person, "-f", str(self.keys / person)],
                           check=True)  # fmt: skip
        signers = [{"user": p, "groups": g, "keys": [(self.keys / f"{p}.pub").read_text().strip()], "github": f"{p}-gh"}
                   for p, g in PEOPLE.items()]  # fmt: skip
        self.trust.write_text(yaml.safe_dump({"administrators": ["carol"], "signers": signers, **RULES}))
        self.base = self.git("rev-parse", "HEAD")

    def reviewer(self, mode: ReviewMode = ReviewMode.SIGNED_MERGE, **settings: Unpack[ReviewOptions]) -> Reviewer:
        signers = load_trust(self.trust)
        rules = load_rules(self.trust, {s.identity.user: s.identity for s in signers})
        logins = tuple(github_logins(signers).items())
        return Reviewer(ReviewSettings(mode, rules, signers, self.root / "review-state", logins=logins, **settings))

    def change(self, person: str, branch: str, files: dict[str, str], *, signed: bool = True) -> None:
        """``person`` writes ``files`` on a new branch from main and commits them."""
        self.git("checkout", "-q", "-b", branch, "main", person=person)
        for relative, text in files.items():
            self.write(relative, text)
        self.commit(person, f"Change {', '.join(files)}", signed=signed)
        self.git("checkout", "-q", "main", person=person)

    def push(self, person: str, files: dict[str, str], *, signed: bool = True) -> str:
        for relative, text in files.items():
            self.write(relative, text)
        return self.commit(person, f"Push {', '.join(files)}", signed=signed)

    def head(self) -> str:
        return self.git("rev-parse", "HEAD")


@contextmanager
def github_repo(root: Path) -> Iterator[tuple[ReviewRepo, FakeGitHub, str]]:
    """A review repository and the GitHub fake serving (its base URL)."""
    fake = FakeGitHub()
    with fake.serving() as url:
        yield ReviewRepo(root), fake, url


def github_reviewer(repo: ReviewRepo, url: str, fake: FakeGitHub) -> Reviewer:
    return repo.reviewer(ReviewMode.GITHUB, forge=GitHubApi(url, fake.slug, TOKEN))
