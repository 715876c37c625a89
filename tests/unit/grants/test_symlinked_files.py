"""Symbolic links are refused for grant and escalation policy files (and the folders holding them): a link's
target can change in a commit that touches nothing under access/, which no one reviews as a grant."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gitopsguard.errors import PolicyError
from gitopsguard.grants.decide import decide
from gitopsguard.grants.load import load_escalation_policies, load_grants
from gitopsguard.grants.signed import SignedMergeVerifier, load_trust
from tests.signedrepo import ESCALATION_POLICY, SignedRepo, grant

PATH = "access/grants/alice.yaml"


def test_a_symlinked_grant_whose_target_changes_outside_access_is_refused(tmp_path: Path) -> None:
    repo = SignedRepo(tmp_path, "shop")
    repo.git("checkout", "-q", "-b", "ask", "main", person="alice")
    repo.write("notes/alice.yaml", grant("alice-debug", "shop", "30m"))
    (repo.work / "access/grants").mkdir(parents=True)
    (repo.work / PATH).symlink_to("../../notes/alice.yaml")
    repo.commit("alice", "Request, through a link")
    repo.git("checkout", "-q", "main", person="alice")
    repo.merge("bob", "ask")
    repo.write("notes/alice.yaml", grant("alice-debug", "shop", "2h"))  # outside access/, unsigned, unreviewed
    repo.commit("alice", "tidy notes", signed=False)
    verifier = SignedMergeVerifier(repo.work, load_trust(repo.trust), repo.root / "state")
    grants, broken = load_grants(repo.work, repo.blob_of)
    policies = load_escalation_policies(repo.work)
    active = [g for g in grants if decide(g, policies, verifier.approval(g.path), None, datetime.now(UTC)).state
              == "ACTIVE"]  # fmt: skip
    assert active == [] and [where for where, _ in broken] == [PATH], (active, broken)
    assert "symbolic link" in broken[0][1]
    assert "is a symbolic link" in verifier.approval(PATH).problem  # the evidence refuses it on its own too


FILES = {PATH: grant("alice-debug", "shop"), "access/policies/debug.yaml": ESCALATION_POLICY.replace("NAMESPACE", "x")}


def _layout(root: Path, link: str) -> None:
    """access/ with one grant and one policy, with a symbolic link at ``link`` to an identical copy elsewhere."""
    for relative, text in FILES.items():
        for base in (root / "elsewhere", root):
            (base / relative).parent.mkdir(parents=True, exist_ok=True)
            (base / relative).write_text(text)
    place = root / link
    if place.is_dir():
        shutil.rmtree(place)
    else:
        place.unlink()
    place.symlink_to(root / "elsewhere" / link)


@pytest.mark.parametrize("link", ["access", "access/grants", PATH])
def test_a_symbolic_link_anywhere_on_a_grants_path_is_refused(tmp_path: Path, link: str) -> None:
    _layout(tmp_path, link)
    grants, broken = load_grants(tmp_path, lambda path: "0" * 40)
    assert grants == [] and len(broken) == 1 and "symbolic link" in broken[0][1], broken
    assert broken[0][0] == link


@pytest.mark.parametrize("link", ["access", "access/policies", "access/policies/debug.yaml"])
def test_a_symbolic_link_anywhere_on_a_policys_path_is_a_policy_error(tmp_path: Path, link: str) -> None:
    _layout(tmp_path, link)
    with pytest.raises(PolicyError, match=f"^{link}: is a symbolic link"):
        load_escalation_policies(tmp_path)
