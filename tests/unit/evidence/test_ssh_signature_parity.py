"""Parity with git, as a property: for commit objects made by real git and real ssh-keygen keys, then mutated
(bytes flipped, dropped or added, the armour rewrapped, the signature header moved, renamed or doubled, the
committer time changed, the message re-signed for another namespace or by another key), the signer
``Signatures`` reports is the one git alone reports (``git log %G? %GS``, one commit a call), and sshsig never
proves good what git does not call good with the same signer."""

from __future__ import annotations

import re
import subprocess

import pytest
from hypothesis import event, example, given
from hypothesis import strategies as st

from gitopsguard.evidence import sshsig
from gitopsguard.evidence.signatures import Signatures
from tests.unit.evidence.sigkit import UNTRUSTED, SigRepo, unsigned

Mutation = tuple[str, int, bytes]
BASES = ["alice", "bob", "erin", UNTRUSTED, "alice-sha256"]
_BYTES = st.one_of(st.sampled_from([b" ", b"\n", b"-", b"=", b"A", b"/", b"\0", "é".encode()]), st.binary(max_size=3))
MUTATIONS = st.one_of(
    st.tuples(st.sampled_from(["flip", "drop", "insert"]), st.integers(0, 10_000), _BYTES),
    st.tuples(st.sampled_from(["rewrap", "time"]), st.integers(0, 400_000_000_000), st.just(b"")),
    st.tuples(st.sampled_from(["header"]), st.just(0), st.sampled_from([b"gpgsig-sha256", b"gpgsigx", b"gpgsig"])),
    st.tuples(st.sampled_from(["move", "double", "trail", "namespace", "resign"]), st.integers(0, 9), _BYTES),
    st.tuples(st.sampled_from(["author", "committer"]), st.integers(0, 80), _BYTES),
)


class Parity:
    def __init__(self, repo: SigRepo) -> None:
        self.repo = repo
        self.bases = {p: repo.raw(repo.commit(p, f"base by {p}")) for p in BASES[:4]}
        self.bases["alice-sha256"] = repo.signed_object("alice", unsigned(self.bases["alice"]), hashalg="sha256")
        self.keys = sshsig.trusted_keys(repo.pairs())
        self.signatures = Signatures(repo.work, repo.signers, repo.root / "parity")
        allowed = repo.root / "parity" / "allowed_signers"
        self.git_log = ["git", "-c", "gpg.format=ssh", "-c", f"gpg.ssh.allowedSignersFile={allowed}", "log",
                        "--no-walk", "--format=%G?%x00%GS"]  # fmt: skip

    def git_says(self, commit: str) -> str | None:
        """git's own verdict: the principal of a good signature, else None (also when git dies on the commit)."""
        done = subprocess.run([*self.git_log, commit], cwd=self.repo.work, capture_output=True, check=False)
        status, _, principal = done.stdout.decode(errors="replace").strip().partition("\0")
        return principal if done.returncode == 0 and status == "G" and principal else None

    def mutate(self, raw: bytes, mutation: Mutation) -> bytes:
        name, number, data = mutation
        head, _, body = raw.partition(b"\n\n")
        if name in ("flip", "drop", "insert"):
            at = number % (len(raw) + 1)
            cut = at + (name != "insert") * max(1, len(data))
            return raw[:at] + (data if name != "drop" else b"") + raw[cut:]
        if name == "rewrap":
            return _rewrap(raw, 1 + number % 100)
        if name == "time":
            return re.sub(rb"(committer [^\n]*> )\d+", rb"\g<1>" + str(number).encode(), raw, count=1)
        if name in ("author", "committer"):  # odd bytes in a person's line, then signed again as they stand
            found = re.search(name.encode() + rb" [^\n]*", raw)
            if found is None:
                return raw
            at = found.start() + len(name) + 1 + number % max(1, found.end() - found.start() - len(name))
            payload = unsigned(raw[:at] + data.replace(b"\n", b"") + raw[at:])
            return self.repo.signed_object("alice", payload) if b"\ngpgsig " in raw else payload
        if name == "header":
            return raw.replace(b"\ngpgsig ", b"\n" + data + b" ", 1)
        lines = head.split(b"\n")
        signature = [line for i, line in enumerate(lines) if _in_sig(lines, i)]
        kept = [line for i, line in enumerate(lines) if not _in_sig(lines, i)]
        if name == "move":
            at = number % (len(kept) + 1)
            return b"\n".join(kept[:at] + signature + kept[at:]) + b"\n\n" + body
        if name == "double":
            return b"\n".join([*lines, *signature]) + b"\n\n" + body
        if name == "trail":
            return b"\n".join([*lines, b" " + data.replace(b"\n", b"")]) + b"\n\n" + body
        payload = b"\n".join(kept) + b"\n\n" + body
        if name == "namespace":
            return self.repo.signed_object("alice", payload, namespace=["file", "Git", "git2"][number % 3])
        return self.repo.signed_object([*BASES[:4]][number % 4], payload)  # resign


def _in_sig(lines: list[bytes], index: int) -> bool:
    while index > 0 and lines[index].startswith(b" "):
        index -= 1
    return lines[index].startswith(b"gpgsig ")


_ARMOUR = re.compile(rb"\ngpgsig (-----BEGIN SSH SIGNATURE-----)\n((?: [^\n]*\n)*?) (-----END SSH SIGNATURE-----)")


def _rewrap(raw: bytes, width: int) -> bytes:
    match = _ARMOUR.search(raw)
    if match is None:
        return raw
    encoded = match.group(2).replace(b"\n ", b"").replace(b" ", b"").replace(b"\n", b"")
    chunks = [encoded[i : i + width] for i in range(0, len(encoded), width)]
    value = b"\n ".join([match.group(1), *chunks, match.group(3)])
    return raw[: match.start()] + b"\ngpgsig " + value + raw[match.end() :]


@pytest.fixture(scope="module")
def parity(tmp_path_factory: pytest.TempPathFactory) -> Parity:
    return Parity(SigRepo(tmp_path_factory.mktemp("parity")))


@given(base=st.sampled_from(BASES), mutations=st.lists(MUTATIONS, max_size=3))
@example(base="alice", mutations=[("time", 300_000_000_000, b"")])  # git refuses past year 9999; we once proved it
@example(base="alice", mutations=[("double", 0, b"")])  # git takes the two values concatenated: good to it
@example(base="bob", mutations=[("rewrap", 63, b"")])  # rewrapped armour: the same signature to both
@example(base="erin", mutations=[("move", 0, b"")])  # the signature header first: git cannot read the commit
@example(base="alice", mutations=[("author", 3, b"\0")])  # git reads a NUL in the author line as unsigned
def test_the_signer_is_the_one_git_reports_and_in_process_never_proves_more(
    parity: Parity, base: str, mutations: list[Mutation]
) -> None:
    raw = parity.bases[base]
    for mutation in mutations:
        raw = parity.mutate(raw, mutation)
    commit = parity.repo.store(raw)
    git_says = parity.git_says(commit)
    proven = sshsig.good_signer(commit, parity.repo.raw(commit), parity.keys)
    event(f"git says {'good' if git_says else 'not good'}, in-process {'proves it' if proven else 'leaves it'}")
    assert proven is None or proven == git_says
    verdict = parity.signatures.signers([commit])[commit]
    assert (verdict.user if verdict else None) == git_says
