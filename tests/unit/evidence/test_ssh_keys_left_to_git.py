"""Keys the in-process check does not handle (DSA, RSA under 2048 bits, a key line whose type word disagrees
with its blob, anything unreadable) are never trusted in-process: commits they sign go to git, whose verdict
stands, so a person with such a key keeps exactly the verdict git gives them."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import pytest

from gitopsguard.evidence import sshsig
from gitopsguard.evidence.identity import Identity
from gitopsguard.evidence.signatures import Signatures
from gitopsguard.evidence.trust import TrustedSigner
from tests.unit.evidence.sigkit import SigRepo


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> SigRepo:
    repo = SigRepo(tmp_path_factory.mktemp("odd-keys"))
    for person, kind, bits in [("frank", "dsa", "1024"), ("grace", "rsa", "1024")]:
        subprocess.run(["ssh-keygen", "-q", "-t", kind, "-b", bits, "-N", "", "-f", str(repo.keys / person)],
                       check=True)  # fmt: skip
    return repo


@pytest.mark.parametrize("person", ["frank", "grace"])
def test_a_commit_signed_by_a_key_we_do_not_check_gets_gits_verdict(repo: SigRepo, tmp_path: Path, person: str) -> None:
    signers = (*repo.signers, TrustedSigner(Identity(person), (repo.public(person),)))
    assert sshsig.trusted_keys([(repo.public(person), person)]) == {}
    commit = repo.commit(person, f"signed by {person}")
    found = Signatures(repo.work, signers, tmp_path / "both").signers([commit])
    alone = Signatures(repo.work, signers, tmp_path / "git", in_process=False).signers([commit])
    assert found == alone == {commit: Identity(person)}


def test_key_lines_we_cannot_read_exactly_are_not_trusted_in_process(repo: SigRepo) -> None:
    kind, blob = repo.public("alice").split()
    lines = [
        f"ssh-rsa {blob}",  # the type word disagrees with the blob
        f"{kind} {blob[:-4]}",  # truncated
        f"{kind} {blob}AAAA",  # trailing bytes in the blob
        f"{kind}",
        "ssh-ed25519-cert-v01@openssh.com AAAA",
        "",
    ]
    assert sshsig.trusted_keys([(line, "alice") for line in lines]) == {}
    assert len(sshsig.trusted_keys([(repo.public(p), p) for p in ("alice", "bob", "carol", "dave", "erin")])) == 5


def test_an_ecdsa_key_with_a_small_coordinate_is_not_trusted_in_process() -> None:
    """A point on P-256 with x = a small number: cryptography takes it, ssh-keygen refuses it as a key."""
    p = 2**256 - 2**224 + 2**192 + 2**96 - 1
    b = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
    for x in range(1, 100):
        rhs = (x**3 - 3 * x + b) % p
        y = pow(rhs, (p + 1) // 4, p)
        if y * y % p == rhs:
            break
    point = b"\x04" + x.to_bytes(32, "big") + y.to_bytes(32, "big")
    blob = b"".join(len(f).to_bytes(4, "big") + f for f in (b"ecdsa-sha2-nistp256", b"nistp256", point))
    line = f"ecdsa-sha2-nistp256 {base64.b64encode(blob).decode()}"
    assert sshsig.trusted_keys([(line, "alice")]) == {}
