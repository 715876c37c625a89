"""Real SSH keys (ssh-keygen) and a real git repository whose commits they sign, for the signature tests;
hostile commit objects are written as raw bytes with ``git hash-object --literally``, as a pushed object would
arrive. Verdicts come from both judges: sshsig in-process, and git alone (``Signatures(in_process=False)``)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from gitopsguard.evidence import sshsig
from gitopsguard.evidence.identity import Identity
from gitopsguard.evidence.signatures import Signatures
from gitopsguard.evidence.trust import TrustedSigner

# (person, ssh-keygen -t, -b): one key type per trusted person; mallory signs with a key nobody trusts
KEYS = {"alice": ("ed25519", ""), "bob": ("ecdsa", "256"), "carol": ("ecdsa", "384"), "dave": ("ecdsa", "521"),
        "erin": ("rsa", "3072")}  # fmt: skip
UNTRUSTED = "mallory"


class SigRepo:
    def __init__(self, root: Path) -> None:
        self.root, self.work, self.keys = root, root / "repo", root / "keys"
        self.keys.mkdir(parents=True)
        for person, (kind, bits) in [*KEYS.items(), (UNTRUSTED, ("ed25519", ""))]:
            size = ["-b", bits] if bits else []
            subprocess.run(["ssh-keygen", "-q", "-t", kind, *size, "-N", "", "-C", person, "-f",
                            str(self.keys / person)], check=True)  # fmt: skip
        self.signers = tuple(TrustedSigner(Identity(p, frozenset({f"team-{p}"})), (self.public(p),)) for p in KEYS)
        self.work.mkdir()
        self.git("init", "-q", "-b", "main")

    def public(self, person: str) -> str:
        return " ".join((self.keys / f"{person}.pub").read_text().split()[:2])

    def git(self, *args: str, person: str = "alice", stdin: bytes | None = None, date: str = "") -> str:
        return self.raw_git(*args, person=person, stdin=stdin, date=date).decode().strip()

    def raw_git(self, *args: str, person: str = "alice", stdin: bytes | None = None, date: str = "") -> bytes:
        email = f"{person}@example.com"
        env = {"GIT_AUTHOR_NAME": person, "GIT_AUTHOR_EMAIL": email, "GIT_COMMITTER_NAME": person,
               "GIT_COMMITTER_EMAIL": email, "HOME": str(self.root), "PATH": "/usr/bin:/bin"}  # fmt: skip
        if date:
            env |= {"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
        signing = ["-c", "gpg.format=ssh", "-c", f"user.signingkey={self.keys / person}"]
        done = subprocess.run(["git", *signing, *args], cwd=self.work, env=env, input=stdin, capture_output=True)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def commit(self, person: str, message: str, *, signed: bool = True, path: str = "") -> str:
        """A commit by ``person`` (signed with their key unless told) changing ``path`` (default: their file)."""
        target = self.work / (path or f"{person}.txt")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(f"{message}\n")
        self.git("add", "-A", person=person)
        self.git("commit", "-q", *(["-S"] if signed else []), "-m", message, person=person)
        return self.git("rev-parse", "HEAD")

    def raw(self, commit: str) -> bytes:
        return self.raw_git("cat-file", "commit", commit)

    def store(self, raw: bytes) -> str:
        """Write ``raw`` as a commit object, unchecked (as a hostile push could): its id."""
        return self.git("hash-object", "-t", "commit", "-w", "--literally", "--stdin", stdin=raw)

    def sign(self, person: str, payload: bytes, *, namespace: str = "git", hashalg: str = "sha512") -> bytes:
        """An armoured SSHSIG signature by ``person``'s key over ``payload`` (ssh-keygen -Y sign)."""
        done = subprocess.run(["ssh-keygen", "-q", "-Y", "sign", "-n", namespace, "-O", f"hashalg={hashalg}", "-f",
                               str(self.keys / person)], input=payload, capture_output=True, check=True)  # fmt: skip
        return done.stdout

    def signed_object(self, person: str, payload: bytes, **options: str) -> bytes:
        """``payload`` (an unsigned commit object) with a gpgsig header by ``person``, placed as git places it."""
        return with_signature(payload, self.sign(person, payload, **options))

    def in_process(self, commit: str) -> str | None:
        return sshsig.good_signer(commit, self.raw(commit), sshsig.trusted_keys(self.pairs()))

    def pairs(self) -> list[tuple[str, str]]:
        return [(key, s.identity.user) for s in self.signers for key in s.keys]

    def by_git(self, *commits: str) -> dict[str, Identity | None]:
        return Signatures(self.work, self.signers, self.root / "git-only", in_process=False).signers(commits)

    def by_both(self, *commits: str) -> dict[str, Identity | None]:
        return Signatures(self.work, self.signers, self.root / "both").signers(commits)


def with_signature(payload: bytes, armoured: bytes, header: bytes = b"gpgsig") -> bytes:
    """The commit object ``payload`` with ``armoured`` as a signature header, after the last header line."""
    head, _, body = payload.partition(b"\n\n")
    value = armoured.rstrip(b"\n").replace(b"\n", b"\n ")
    return head + b"\n" + header + b" " + value + b"\n\n" + body


def unsigned(raw: bytes) -> bytes:
    """The commit object without its gpgsig header (the payload git verifies)."""
    lines = raw.partition(b"\n\n")[0].split(b"\n")
    kept = [line for index, line in enumerate(lines) if not _in_signature(lines, index)]
    return b"\n".join(kept) + b"\n\n" + raw.partition(b"\n\n")[2]


def _in_signature(lines: list[bytes], index: int) -> bool:
    while index >= 0 and lines[index].startswith(b" "):
        index -= 1
    return index >= 0 and lines[index].startswith(b"gpgsig ")
