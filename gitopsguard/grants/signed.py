"""`signed-merge` approval: identity from SSH signatures that git itself verifies, never from names.

A grant counts as approved when the commit that last changed its file was signed by the grant's subject,
and that commit reached the tracked branch through a merge commit signed by an approver. The approval time
is that merge commit's committer time, which the signature covers.
"""

from __future__ import annotations

import bisect
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from gitopsguard.errors import GitOpsGuardError, SourceError
from gitopsguard.grants.model import Approval, Identity
from gitopsguard.grants.trust import TrustedSigner, github_logins, load_trust

__all__ = ["SignedMergeVerifier", "TrustedSigner", "github_logins", "load_trust"]


class SignedMergeVerifier:
    def __init__(self, repository: Path, signers: tuple[TrustedSigner, ...], state_dir: Path) -> None:
        self._repo = repository
        self._people = {s.identity.user: s.identity for s in signers}
        state_dir.mkdir(parents=True, exist_ok=True)
        self._allowed = state_dir / "allowed_signers"
        self._allowed.write_text("".join(f"{s.identity.user} {key}\n" for s in signers for key in s.keys))
        # OpenPGP: a keyring of our own holding only the trusted keys; identity by key fingerprint, never
        # by the user id text inside a key (anyone can write "bob" there).
        self._gnupg = state_dir / "gnupg"
        self._gnupg.mkdir(mode=0o700, exist_ok=True)
        self._fingerprints = {fpr: s.identity for s in signers for key in s.gpg_keys for fpr in self._import(key)}
        self._first_parent: list[str] | None = None

    def approval(self, path: str) -> Approval:
        """The evidence for the grant file at ``path`` as the branch head has it."""
        request = self._git("log", "-1", "--format=%H", "HEAD", "--", path)
        if not request:
            return Approval(None, (), None, f"{path}: not found in the branch history")
        requester = self._signer(request)
        merge = self._merge_that_brought(request)
        if merge is None:
            return Approval(requester, (), None, "pushed straight to the branch: a grant needs a merge (the review)")
        approver = self._signer(merge)
        if approver is None:
            return Approval(requester, (), None, f"the merge {merge[:12]} is not signed by a trusted key")
        approved_at = datetime.fromtimestamp(int(self._git("log", "-1", "--format=%ct", merge)), UTC)
        return Approval(requester, (approver,), approved_at)

    def blob(self, path: str) -> str:
        """The git blob id of the file at the branch head (an edited grant gets a new one)."""
        return self._git("rev-parse", f"HEAD:{path}")

    def _signer(self, commit: str) -> Identity | None:
        fields = self._git("log", "-1", "--format=%G?%x00%GS%x00%GP%x00%GF", commit).split("\x00")
        status, principal, primary, key = [*fields, "", "", ""][:4]
        if key.startswith("SHA256:"):  # SSH: the principal comes from our allowed-signers file
            return self._people.get(principal) if status == "G" else None
        if status in ("G", "U"):  # OpenPGP, good signature; our keyring holds trusted keys only
            return self._fingerprints.get(primary) or self._fingerprints.get(key)
        return None

    def _import(self, armoured: str) -> list[str]:
        """Import one OpenPGP public key into our keyring; its fingerprints (primary and subkeys)."""
        env = {"GNUPGHOME": str(self._gnupg), "PATH": "/usr/bin:/bin"}
        shown = subprocess.run(["gpg", "--batch", "--with-colons", "--import-options", "show-only", "--import"],
                               input=armoured, env=env, capture_output=True, text=True, check=False)  # fmt: skip
        done = subprocess.run(["gpg", "--batch", "--import"], input=armoured, env=env, capture_output=True, text=True,
                              check=False)  # fmt: skip
        if shown.returncode != 0 or done.returncode != 0:
            raise GitOpsGuardError(f"trust configuration: an OpenPGP key does not import: {done.stderr.strip()[:200]}")
        return [line.split(":")[9] for line in shown.stdout.splitlines() if line.startswith("fpr:")]

    def _merge_that_brought(self, request: str) -> str | None:
        """The first-parent commit whose merge brought ``request`` in; None when it was pushed straight."""
        if self._first_parent is None:
            self._first_parent = self._git("rev-list", "--first-parent", "--reverse", "HEAD").split()
        chain = self._first_parent
        if request in set(chain):
            return None
        # Along the first-parent chain, "contains the request" flips from false to true once: bisect it.
        index = bisect.bisect_left(range(len(chain)), True, key=lambda i: self._contains(chain[i], request))
        return chain[index] if index < len(chain) else None

    def _contains(self, commit: str, request: str) -> bool:
        done = subprocess.run(["git", "merge-base", "--is-ancestor", request, commit], cwd=self._repo,
                              capture_output=True, check=False)  # fmt: skip
        return done.returncode == 0

    def _git(self, *args: str) -> str:
        # paths are literal, never patterns: a file named alice-[d]ebug.yaml must not read alice-debug.yaml's history
        trust = ["-c", "gpg.format=ssh", "-c", f"gpg.ssh.allowedSignersFile={self._allowed}"]
        command = ["git", "--literal-pathspecs", *trust, *args]
        env = {**os.environ, "GNUPGHOME": str(self._gnupg)}
        done = subprocess.run(command, cwd=self._repo, capture_output=True, text=True, check=False, env=env)
        if done.returncode != 0:
            raise SourceError(f"{self._repo}: git {args[0]} failed: {done.stderr.strip()[:300]}")
        return done.stdout.strip()
