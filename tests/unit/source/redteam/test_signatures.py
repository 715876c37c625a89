"""Red team (issue 20): hand-made commit objects whose signature is not what it seems. Each asks both the
in-process check and git alone (Signatures(in_process=False), the oracle), and expects no signer where the
signature does not make a good `git` signature over the commit's own payload.

Run: .venv/bin/python -m pytest -q tests/unit/source/redteam/test_signatures.py
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from gitopsguard.evidence.identity import Identity
from gitopsguard.evidence.signatures import Signatures
from gitopsguard.evidence.trust import load_trust
from gitopsguard.source.review import UnreviewedRevisionError
from tests.reviewrepo import ReviewRepo


@pytest.fixture
def repo(tmp_path: Path) -> ReviewRepo:
    return ReviewRepo(tmp_path)


def sign(repo: ReviewRepo, person: str, payload: bytes, namespace: str = "git") -> bytes:
    path = repo.root / "payload"
    path.write_bytes(payload)
    sig = repo.root / "payload.sig"
    sig.unlink(missing_ok=True)
    subprocess.run(["ssh-keygen", "-q", "-Y", "sign", "-n", namespace, "-f", str(repo.keys / person), str(path)],
                   check=True, capture_output=True)  # fmt: skip
    return sig.read_bytes()


def with_header(payload: bytes, name: bytes, signature: bytes) -> bytes:
    head, _, body = payload.partition(b"\n\n")
    lines = signature.rstrip(b"\n").split(b"\n")
    header = name + b" " + lines[0] + b"".join(b"\n " + line for line in lines[1:])
    return head + b"\n" + header + b"\n\n" + body


def store(repo: ReviewRepo, raw: bytes) -> str:
    done = subprocess.run(["git", "hash-object", "-t", "commit", "-w", "--stdin", "--literally"], cwd=repo.work,
                          input=raw, capture_output=True, check=True)  # fmt: skip
    return done.stdout.decode().strip()


def unsigned_merge(repo: ReviewRepo) -> bytes:
    repo.change("alice", "web", {"apps/web.yaml": "x: 1\n"})
    merge = repo.merge("carol", "web", signed=False)
    return subprocess.run(["git", "cat-file", "commit", merge], cwd=repo.work, capture_output=True,
                          check=True).stdout  # fmt: skip


def verdicts(repo: ReviewRepo, commit: str) -> tuple[Identity | None, Identity | None]:
    signers = load_trust(repo.trust)
    fast = Signatures(repo.work, signers, repo.root / "s1").signer(commit)
    oracle = Signatures(repo.work, signers, repo.root / "s2", in_process=False).signer(commit)
    return fast, oracle


def test_holds_a_trusted_key_signature_made_for_the_file_namespace_is_no_signature(repo: ReviewRepo) -> None:
    payload = unsigned_merge(repo)
    commit = store(repo, with_header(payload, b"gpgsig", sign(repo, "carol", payload, "file")))
    assert verdicts(repo, commit) == (None, None)


def test_holds_a_good_signature_under_gpgsig_sha256_only_is_no_signature_in_a_sha1_repository(repo: ReviewRepo) -> None:
    payload = unsigned_merge(repo)
    commit = store(repo, with_header(payload, b"gpgsig-sha256", sign(repo, "carol", payload)))
    assert verdicts(repo, commit) == (None, None)


def test_holds_a_signature_lifted_from_another_commit_is_no_signature(repo: ReviewRepo) -> None:
    payload = unsigned_merge(repo)
    other = payload.replace(b"Merge web", b"Merge web, with policies/exceptions/mine.yaml")
    commit = store(repo, with_header(other, b"gpgsig", sign(repo, "carol", payload)))
    assert verdicts(repo, commit) == (None, None)


def test_holds_a_good_signature_plus_a_second_gpgsig_header_agrees_with_git(repo: ReviewRepo) -> None:
    payload = unsigned_merge(repo)
    good = with_header(payload, b"gpgsig", sign(repo, "carol", payload))
    head, _, body = good.partition(b"\n\n")
    commit = store(repo, head + b"\ngpgsig junk\n\n" + body)
    fast, oracle = verdicts(repo, commit)
    assert fast == oracle


def test_holds_trailing_text_after_the_armour_agrees_with_git(repo: ReviewRepo) -> None:
    payload = unsigned_merge(repo)
    commit = store(repo, with_header(payload, b"gpgsig", sign(repo, "carol", payload) + b"trailing words\n"))
    fast, oracle = verdicts(repo, commit)
    assert fast == oracle


def test_holds_a_crlf_payload_agrees_with_git(repo: ReviewRepo) -> None:
    payload = unsigned_merge(repo).replace(b"\n\nMerge", b"\nencoding ISO-8859-1\r\n\nMerge")
    commit = store(repo, with_header(payload, b"gpgsig", sign(repo, "carol", payload)))
    fast, oracle = verdicts(repo, commit)
    assert fast == oracle


def test_a_key_the_trust_file_lists_under_two_users_is_refused_at_load(repo: ReviewRepo) -> None:
    """Operator error, but silent: git's allowed-signers lookup picks the first principal listed, so the key
    signs as whoever comes first in the file. Expected: the trust file is refused at load."""
    data = yaml.safe_load(repo.trust.read_text())
    carol_key = next(s for s in data["signers"] if s["user"] == "carol")["keys"][0]
    next(s for s in data["signers"] if s["user"] == "alice")["keys"].append(carol_key)  # alice listed first
    repo.trust.write_text(yaml.safe_dump(data))
    payload = unsigned_merge(repo)
    commit = store(repo, with_header(payload, b"gpgsig", sign(repo, "carol", payload)))
    try:
        load_trust(repo.trust)
    except Exception:
        return
    fast, oracle = verdicts(repo, commit)
    pytest.fail(f"loaded; carol's own signature verifies as {fast} in-process and {oracle} by git")


def test_holds_a_merge_signed_with_the_file_namespace_is_refused_by_the_reviewer(repo: ReviewRepo) -> None:
    payload = unsigned_merge(repo)
    commit = store(repo, with_header(payload, b"gpgsig", sign(repo, "carol", payload, "file")))
    with pytest.raises(UnreviewedRevisionError, match="a merge not signed by a trusted key"):
        repo.reviewer().verify(repo.work, repo.base, commit)
