"""One hostile commit must not take down the verdicts on every other commit: git dies on a signature in no
format it knows, and by SIGPIPE when ssh-keygen quits before reading a commit it cannot verify. Either used to
fail the whole batched ``git log``, so one pushed object made every signature check of a pass fail."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitopsguard.errors import SourceError
from gitopsguard.evidence.signatures import Signatures
from tests.unit.evidence.sigkit import SigRepo, unsigned, with_signature


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> SigRepo:
    return SigRepo(tmp_path_factory.mktemp("batch"))


def hostile(repo: SigRepo, kind: str) -> str:
    payload = unsigned(repo.raw(repo.commit("mallory", f"hostile {kind}", signed=False)))
    if kind == "unknown format":
        return repo.store(with_signature(payload, b"-----BEGIN SOMETHING ELSE-----\n"))
    big = payload.rstrip(b"\n") + b"\n" + b"x" * 300_000 + b"\n"  # more than a pipe holds
    return repo.store(with_signature(big, b"-----BEGIN SSH SIGNATURE-----\nU1NIU0lH\n-----END SSH SIGNATURE-----\n"))


@pytest.mark.parametrize("kind", ["unknown format", "ssh-keygen quits early"])
@pytest.mark.parametrize("in_process", [True, False])
def test_a_commit_that_kills_git_gets_no_signer_and_the_others_keep_theirs(
    repo: SigRepo, tmp_path: Path, kind: str, in_process: bool
) -> None:
    good = [repo.commit(person, f"{kind} {in_process}") for person in ("alice", "erin")]
    bad = hostile(repo, kind)
    signatures = Signatures(repo.work, repo.signers, tmp_path, in_process=in_process)
    found = signatures.signers([good[0], bad, good[1]])
    assert {c: v.user if v else None for c, v in found.items()} == {good[0]: "alice", bad: None, good[1]: "erin"}


def test_a_commit_the_repository_does_not_hold_is_still_an_error(repo: SigRepo, tmp_path: Path) -> None:
    missing = "0123456789abcdef0123456789abcdef01234567"
    with pytest.raises(SourceError, match="git log failed"):
        Signatures(repo.work, repo.signers, tmp_path).signers([repo.commit("alice", "here"), missing])
