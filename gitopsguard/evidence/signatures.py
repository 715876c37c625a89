"""Who signed a commit, as git verifies it against the operator's trust file: never from names in the commit.

SSH signatures are checked by git against an allowed-signers file we write from the trust file, so the
principal git reports is one of our user names. OpenPGP signatures are checked against a keyring of our own
holding only the trusted keys; identity comes from the key fingerprint, never from the user id text inside a
key (anyone can write "bob" there).

Speed without a second judge: git spawns ssh-keygen twice per SSH-signed commit (about 8 ms each), so
``signers`` first reads every asked commit in one ``git cat-file --batch`` and checks SSH signatures by
trusted ed25519, ECDSA and RSA keys in-process (sshsig.py). **The in-process check can only speed up a good
verdict, never create one git would not give**: a commit it proves good gets its signer; every other commit
(OpenPGP, an unknown key type, anything that fails or looks odd) goes to git in one batched
``git log --no-walk --stdin`` call, and git's verdict stands. The only other verdict reached without git is
"no signer", for a commit git itself would call unsigned (no ``gpgsig`` header, found as git finds it) or
die on (a signature in no format git knows): a refusal, never an approval.

A hostile commit must not silence the rest: git dies on an unknown signature format, and by SIGPIPE when
ssh-keygen quits before reading a commit it cannot verify, which fails the whole batch. A failed batch is
split in halves until the commit that kills git stands alone; it gets no signer, the others git's verdict.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
from collections.abc import Sequence
from pathlib import Path

from gitopsguard.errors import GitOpsGuardError, SourceError
from gitopsguard.evidence import sshsig
from gitopsguard.evidence.history import Git
from gitopsguard.evidence.identity import Identity
from gitopsguard.evidence.trust import TrustedSigner

_FORMAT = "%H%x00%G?%x00%GS%x00%GP%x00%GF%x00"
_SHA1 = re.compile(r"[0-9a-f]{40}")
# The armour lines git recognises a signature by (OpenPGP, X.509, SSH); on any other it dies
_GIT_FORMATS = (b"-----BEGIN PGP SIGNATURE-----", b"-----BEGIN PGP MESSAGE-----", b"-----BEGIN SIGNED MESSAGE-----",
                b"-----BEGIN SSH SIGNATURE-----")  # fmt: skip


class Signatures:
    def __init__(
        self, repository: Path, signers: tuple[TrustedSigner, ...], state_dir: Path, *, in_process: bool = True
    ) -> None:
        """``in_process=False`` leaves every verdict to git (the benchmark's baseline, the tests' oracle)."""
        self._people = {s.identity.user: s.identity for s in signers}
        state_dir.mkdir(parents=True, exist_ok=True)
        allowed = state_dir / "allowed_signers"
        allowed.write_text("".join(f"{s.identity.user} {key}\n" for s in signers for key in s.keys))
        self._gnupg = state_dir / "gnupg"
        self._gnupg.mkdir(mode=0o700, exist_ok=True)
        self._fingerprints = {fpr: s.identity for s in signers for key in s.gpg_keys for fpr in self._import(key)}
        trust = ["-c", "gpg.format=ssh", "-c", f"gpg.ssh.allowedSignersFile={allowed}"]
        # Only our options decide a verdict: no system or user git config (a gpg.ssh.program or revocation
        # file there would make git's verdict differ from the in-process one).
        isolated = {"GNUPGHOME": str(self._gnupg), "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}
        self.git = Git(repository, trust, isolated)
        pairs = ((key, s.identity.user) for s in signers for key in s.keys)
        self._keys = sshsig.trusted_keys(pairs) if in_process else None
        self._all_ssh_keys = frozenset(_blob(key) for s in signers for key in s.keys)  # every key, provable or not
        self._known: dict[str, Identity | None] = {}  # commit -> its trusted signer (commit ids are contents)

    def signer(self, commit: str) -> Identity | None:
        """The trusted person whose key made a good signature on ``commit``; None when unsigned or untrusted."""
        return self.signers([commit])[commit]

    def signers(self, commits: Sequence[str]) -> dict[str, Identity | None]:
        """``signer`` for each commit: decided in-process where that is safe, the rest by git in one call."""
        wanted = [c for c in dict.fromkeys(commits) if c not in self._known]
        decided = self._decided(wanted) if self._keys is not None else {}
        self._known.update(decided)
        rest = [c for c in wanted if c not in decided]
        if rest:
            self._known.update(self._by_git(rest))
        return {c: self._known.get(c) for c in commits}

    def prove(self, commits: Sequence[str]) -> None:
        """Decide in-process what can be decided without git, and keep it; ``signer`` asks git later, one
        commit at a time, only for what is still open. A verdict's cost then follows what is judged: a pass
        that stops at its first unreviewed step never waits for git on a thousand untrusted signatures."""
        if self._keys is not None:
            self._known.update(self._decided([c for c in dict.fromkeys(commits) if c not in self._known]))

    def _decided(self, commits: list[str]) -> dict[str, Identity | None]:
        """Verdicts that need no git: None for a commit with no signature (git says N) or one in no format git
        knows (git dies on it); the signer of one sshsig proves good. Silent about every other commit."""
        asked = [c for c in commits if _SHA1.fullmatch(c)]
        found: dict[str, Identity | None] = {}
        for commit, raw in self._objects(asked).items() if asked else ():
            signature = sshsig.git_signature(raw)
            if signature is None or not signature.startswith(_GIT_FORMATS):
                found[commit] = None
            elif (user := sshsig.good_signer(commit, raw, self._keys or {})) in self._people:
                found[commit] = self._people[str(user)]
            elif self._by_a_stranger(signature):
                found[commit] = None
        return found

    def _by_a_stranger(self, signature: bytes) -> bool:
        """Whether a well-formed SSH signature names a key the trust file does not hold at all: git cannot call
        it good for anyone of ours, so it is decided here (no ssh-keygen per commit for a flood of them)."""
        try:
            blob = sshsig.parse_sshsig(sshsig.dearmor(signature)).public_key
        except ValueError:
            return False  # odd shapes are left to git, whose verdict stands
        return blob not in self._all_ssh_keys

    def _objects(self, commits: list[str]) -> dict[str, bytes]:
        """Each commit's raw object, read in one ``git cat-file --batch``; names it does not answer with a
        commit object are left out (git's own path reports them)."""
        out = self.git.raw("cat-file", "--batch", stdin="".join(f"{c}\n" for c in commits))
        found: dict[str, bytes] = {}
        at = 0
        for commit in commits:
            end = out.find(b"\n", at)
            if end < 0:
                break
            header, at = out[at:end].split(b" "), end + 1
            if len(header) == 3:  # "<id> <type> <size>", then the content and a newline
                size = int(header[2])
                if header[1] == b"commit" and header[0] == commit.encode():
                    found[commit] = out[at : at + size]
                at += size + 1
        return found

    def _by_git(self, commits: list[str]) -> dict[str, Identity | None]:
        """git's verdict on each commit, in one ``git log`` call. A hostile commit can kill that call (git dies
        on a signature in no format it knows, and by SIGPIPE when ssh-keygen quits before reading the commit),
        so a failed call is split in halves; a commit that alone still fails and exists has no good signature
        git could report."""
        try:
            listed = self.git("log", "--no-walk=unsorted", "--stdin", f"--format={_FORMAT}", stdin="\n".join(commits))
        except SourceError:
            if len(commits) > 1:
                half = len(commits) // 2
                return self._by_git(commits[:half]) | self._by_git(commits[half:])
            if self.git("cat-file", "--batch-check=%(objecttype)", stdin=f"{commits[0]}\n") != "commit":
                raise
            return {commits[0]: None}
        fields = listed.split("\x00")
        return {
            fields[index].strip(): self._identity(*fields[index + 1 : index + 5])
            for index in range(0, len(fields) - 4, 5)
        }

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


def _blob(key: str) -> bytes:
    """The key blob of a trust-file key line ("type base64")."""
    try:
        return base64.b64decode(key.split()[1], validate=True)
    except (IndexError, ValueError):
        return b""
