"""SSH commit signatures checked in-process (evidence/sshsig.py): a good signature by each trusted key type is
proven with its signer, and every hostile commit is either refused or left to git, whose verdict stands. Each
case compares with git's own verdict on the same object (ssh-keygen through git, with real keys)."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest

from gitopsguard.evidence import sshsig
from gitopsguard.evidence.identity import Identity
from gitopsguard.evidence.signatures import Signatures
from gitopsguard.evidence.trust import TrustedSigner
from tests.unit.evidence.sigkit import KEYS, UNTRUSTED, SigRepo, unsigned, with_signature


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> SigRepo:
    return SigRepo(tmp_path_factory.mktemp("sig"))


@pytest.fixture(scope="module")
def signed(repo: SigRepo) -> bytes:
    """A real commit signed by alice (ed25519) through git."""
    return repo.raw(repo.commit("alice", "the reviewed change"))


def assert_left_to_git(repo: SigRepo, commit: str, git_says: str | None) -> None:
    """Not proven in-process; git's verdict (``git_says``: the signer git names, or None) is the answer."""
    assert repo.in_process(commit) is None
    verdict = repo.by_both(commit)[commit]
    assert (verdict.user if verdict else None) == git_says
    assert repo.by_git(commit) == {commit: verdict}


@pytest.mark.parametrize("person", list(KEYS))
def test_a_good_signature_by_each_trusted_key_type_is_proven_with_its_signer(repo: SigRepo, person: str) -> None:
    commit = repo.commit(person, f"work by {person}")
    assert repo.in_process(commit) == person
    assert repo.by_both(commit) == repo.by_git(commit) == {commit: Identity(person, frozenset({f"team-{person}"}))}


def test_a_signature_with_the_sha256_message_hash_is_proven(repo: SigRepo, signed: bytes) -> None:
    commit = repo.store(repo.signed_object("bob", unsigned(signed), hashalg="sha256"))
    assert repo.in_process(commit) == "bob" and repo.by_git(commit)[commit] == repo.signers[1].identity


def test_a_signature_by_an_untrusted_key_is_refused(repo: SigRepo) -> None:
    commit = repo.commit(UNTRUSTED, "mallory's change")
    assert_left_to_git(repo, commit, None)


@pytest.mark.parametrize("edit", [
    (b"the reviewed change", b"the reviewed change, and more"),  # the message edited after signing
    (b"tree ", b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nx "),  # another tree line before the real one
    (b"committer alice", b"committer bob"),
])  # fmt: skip
def test_a_trusted_signature_over_a_different_payload_is_refused(
    repo: SigRepo, signed: bytes, edit: tuple[bytes, bytes]
) -> None:
    commit = repo.store(signed.replace(*edit, 1))
    assert_left_to_git(repo, commit, None)


def test_a_swapped_tree_is_refused(repo: SigRepo, signed: bytes) -> None:
    other = repo.git("rev-parse", f"{repo.commit('alice', 'another tree', signed=False)}^{{tree}}")
    swapped = re.sub(rb"^tree [0-9a-f]{40}", b"tree " + other.encode(), signed, count=1)
    assert swapped != signed
    assert_left_to_git(repo, repo.store(swapped), None)


def test_a_signature_made_for_the_file_namespace_is_refused(repo: SigRepo, signed: bytes) -> None:
    commit = repo.store(repo.signed_object("alice", unsigned(signed), namespace="file"))
    assert_left_to_git(repo, commit, None)


def garble(armoured: bytes, how: str) -> bytes:
    body = armoured.split(b"\n")[1:-2]
    flipped = base64.b64encode(bytes(b ^ 1 for b in base64.b64decode(body[2][:4])))
    return {
        "truncated": armoured[: len(armoured) // 2],
        "no end line": armoured.replace(b"-----END SSH SIGNATURE-----\n", b""),
        "a garbled character": armoured.replace(body[1][:4], b"!!!!", 1),
        "a line dropped": armoured.replace(body[1] + b"\n", b"", 1),
        "a flipped bit": armoured.replace(body[2][:4], flipped, 1),
        "empty": b"",
    }[how]


@pytest.mark.parametrize("how", ["truncated", "no end line", "a garbled character", "a line dropped", "a flipped bit",
                                 "empty"])  # fmt: skip
def test_truncated_or_garbled_armour_is_refused(repo: SigRepo, signed: bytes, how: str) -> None:
    payload = unsigned(signed)
    commit = repo.store(with_signature(payload, garble(repo.sign("alice", payload), how)))
    assert_left_to_git(repo, commit, None)


def test_bytes_after_the_signature_inside_the_blob_are_refused(repo: SigRepo, signed: bytes) -> None:
    payload = unsigned(signed)
    blob = sshsig.dearmor(repo.sign("alice", payload)) + b"\0\0\0\0"
    armoured = b"-----BEGIN SSH SIGNATURE-----\n" + base64.b64encode(blob) + b"\n-----END SSH SIGNATURE-----\n"
    assert_left_to_git(repo, repo.store(with_signature(payload, armoured)), None)


def test_text_after_the_armour_is_left_to_git(repo: SigRepo, signed: bytes) -> None:
    """ssh-keygen reads up to the end line and ignores the rest; we do not prove such a shape, git decides."""
    payload = unsigned(signed)
    commit = repo.store(with_signature(payload, repo.sign("alice", payload) + b"whatever follows\n"))
    assert_left_to_git(repo, commit, "alice")


def test_a_commit_with_two_gpgsig_headers_is_left_to_git(repo: SigRepo, signed: bytes) -> None:
    payload = unsigned(signed)
    twice = with_signature(with_signature(payload, repo.sign(UNTRUSTED, payload)), repo.sign("alice", payload))
    assert_left_to_git(repo, repo.store(twice), None)


def test_a_gpgsig_sha256_header_beside_the_signature_is_left_to_git(repo: SigRepo, signed: bytes) -> None:
    payload = unsigned(signed)
    both = with_signature(with_signature(payload, repo.sign("alice", payload)), b"x\n", header=b"gpgsig-sha256")
    assert_left_to_git(repo, repo.store(both), "alice")


def test_a_huge_signature_is_not_read_in_process(repo: SigRepo, signed: bytes) -> None:
    payload = unsigned(signed)
    padded = repo.sign("alice", payload).replace(b"\n-----END", b"\n" + (b"A" * 68 + b"\n") * 2000 + b"-----END")
    assert len(padded) > sshsig.MAX_SIGNATURE_BYTES
    assert_left_to_git(repo, repo.store(with_signature(payload, padded)), None)


def test_unicode_in_the_headers_and_message_is_signed_like_any_bytes(repo: SigRepo) -> None:
    commit = repo.commit("alice", "ünïcødé ✓ \u202e txt.exe — 日本語")
    assert repo.in_process(commit) == "alice" and repo.by_git(commit)[commit] is not None


def test_unicode_inside_the_signature_header_is_refused(repo: SigRepo, signed: bytes) -> None:
    payload = unsigned(signed)
    armoured = repo.sign("alice", payload).replace(b"SIGNATURE-----\n", "SIGNATURE-----\n\u00e9".encode(), 1)
    assert_left_to_git(repo, repo.store(with_signature(payload, armoured)), None)


def test_a_commit_dated_after_year_9999_is_left_to_git_which_refuses_it(repo: SigRepo, signed: bytes) -> None:
    """git hands ssh-keygen the committer time, which it refuses past year 9999: a good signature git calls bad."""
    future = re.sub(rb"(committer [^\n]*> )\d+", rb"\g<1>300000000000", unsigned(signed))
    assert_left_to_git(repo, repo.store(repo.signed_object("alice", future)), None)


def test_a_key_two_users_hold_is_left_to_git(repo: SigRepo) -> None:
    shared = (*repo.signers, TrustedSigner(Identity("zed"), repo.signers[0].keys))
    commit = repo.commit("alice", "signed with a key alice and zed both hold")
    assert sshsig.good_signer(commit, repo.raw(commit), sshsig.trusted_keys(
        [(key, s.identity.user) for s in shared for key in s.keys])) is None  # fmt: skip
    both = Signatures(repo.work, shared, repo.root / "shared").signers([commit])
    alone = Signatures(repo.work, shared, repo.root / "shared-git", in_process=False).signers([commit])
    assert both == alone


def test_a_signature_moved_to_another_commit_is_refused(repo: SigRepo, signed: bytes) -> None:
    other = repo.raw(repo.commit("bob", "bob's own change"))
    armoured = b"-----BEGIN" + signed.split(b"-----BEGIN")[1].split(b"-----END")[0].replace(b"\n ", b"\n")
    moved = with_signature(unsigned(other), armoured + b"-----END SSH SIGNATURE-----\n")
    assert_left_to_git(repo, repo.store(moved), None)


def test_signers_gives_gits_verdict_for_a_mix_of_commits(repo: SigRepo, signed: bytes) -> None:
    commits = [repo.commit(p, f"mix {p}") for p in [*KEYS, UNTRUSTED]]
    commits += [repo.commit("alice", "unsigned", signed=False), repo.store(signed.replace(b"reviewed", b"other"))]
    assert repo.by_both(*commits) == repo.by_git(*commits)
    assert [v.user if v else None for v in repo.by_both(*commits).values()] == [*KEYS, None, None, None]


def test_an_abbreviated_or_symbolic_name_is_answered_by_git(repo: SigRepo, tmp_path: Path) -> None:
    commit = repo.commit("alice", "named two ways")
    signatures = Signatures(repo.work, repo.signers, tmp_path)
    assert signatures.signers([commit[:12]]) == {commit[:12]: None}  # as before: git keys its answer by the full id
    assert signatures.signer(commit) == repo.signers[0].identity


def test_commits_already_verified_need_no_git_at_all(tmp_path: Path) -> None:
    """A pass over an already-verified head adds no git work: with the repository gone, the verdicts stand."""
    repo = SigRepo(tmp_path / "own")
    commits = [repo.commit(p, f"once by {p}") for p in ("alice", "bob")] + [repo.commit("alice", "u", signed=False)]
    signatures = Signatures(repo.work, repo.signers, tmp_path / "state")
    first = signatures.signers(commits)
    repo.work.rename(tmp_path / "gone")
    assert signatures.signers(commits) == first
    assert [v.user if v else None for v in first.values()] == ["alice", "bob", None]
