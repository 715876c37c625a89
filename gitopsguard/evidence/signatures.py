"""Who signed a commit, as git verifies it against the operator's trust file: never from names in the commit.

SSH signatures are checked by git against an allowed-signers file we write from the trust file, so the
principal git reports is one of our user names. OpenPGP signatures are checked against a keyring of our own
holding only the trusted keys; identity comes from the key fingerprint, never from the user id text inside a
key (anyone can write "bob" there).
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

from gitopsguard.errors import GitOpsGuardError
from gitopsguard.evidence.history import Git
from gitopsguard.evidence.identity import Identity
from gitopsguard.evidence.trust import TrustedSigner

_FORMAT = "%H%x00%G?%x00%GS%x00%GP%x00%GF%x00"


class Signatures:
    def __init__(self, repository: Path, signers: tuple[TrustedSigner, ...], state_dir: Path) -> None:
        self._people = {s.identity.user: s.identity for s in signers}
        state_dir.mkdir(parents=True, exist_ok=True)
        allowed = state_dir / "allowed_signers"
        allowed.write_text("".join(f"{s.identity.user} {key}\n" for s in signers for key in s.keys))
        self._gnupg = state_dir / "gnupg"
        self._gnupg.mkdir(mode=0o700, exist_ok=True)
        self._fingerprints = {fpr: s.identity for s in signers for key in s.gpg_keys for fpr in self._import(key)}
        trust = ["-c", "gpg.format=ssh", "-c", f"gpg.ssh.allowedSignersFile={allowed}"]
        self.git = Git(repository, trust, {"GNUPGHOME": str(self._gnupg)})
        self._known: dict[str, Identity | None] = {}  # commit -> its trusted signer (commit ids are contents)

    def signer(self, commit: str) -> Identity | None:
        """The trusted person whose key made a good signature on ``commit``; None when unsigned or untrusted."""
        return self.signers([commit])[commit]

    def signers(self, commits: Sequence[str]) -> dict[str, Identity | None]:
        """``signer`` for each commit, verified in one git call for those not verified before."""
        wanted = [c for c in dict.fromkeys(commits) if c not in self._known]
        if wanted:
            listed = self.git("log", "--no-walk=unsorted", "--stdin", f"--format={_FORMAT}", stdin="\n".join(wanted))
            fields = listed.split("\x00")
            for index in range(0, len(fields) - 4, 5):
                commit = fields[index].strip()
                self._known[commit] = self._identity(*fields[index + 1 : index + 5])
        return {c: self._known.get(c) for c in commits}

    def _identity(self, status: str, principal: str, primary: str, key: str) -> Identity | None:
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
