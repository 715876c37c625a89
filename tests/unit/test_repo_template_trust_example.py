"""repo-template/operator/trust.example.yaml (issue 20): as shipped, with placeholder keys, gitopsguard
refuses it; with real keys put in, its review rules mean what repo-template/README.md says: security
reviewers for policies/ (exceptions included) and access/policies/, each team's leads for its folder, any
approver elsewhere, and the image bot may push one file straight."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from gitopsguard.commands.review import ReviewOptions, reviewer_for
from gitopsguard.errors import GitOpsGuardError
from gitopsguard.evidence.identity import Identity
from gitopsguard.evidence.trust import load_trust

TEMPLATE = Path(__file__).parents[2] / "repo-template"
EXAMPLE = TEMPLATE / "operator" / "trust.example.yaml"


@pytest.fixture
def filled(tmp_path: Path) -> Path:
    """The example with a real ssh-keygen key for each signer in place of its placeholder."""
    data = yaml.safe_load(EXAMPLE.read_text())
    for signer in data["signers"]:
        key = tmp_path / signer["user"]
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        signer["keys"] = [(tmp_path / f"{signer['user']}.pub").read_text().strip()]
    path = tmp_path / "trust.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_the_example_as_shipped_is_refused_for_its_placeholder_keys() -> None:
    with pytest.raises(GitOpsGuardError, match=r"signers\[0\]\.keys: 'ssh-ed25519 AAAA\.\.\.alice'\.\.\. is not a"):
        load_trust(EXAMPLE)


def test_the_example_rules_need_security_reviewers_team_leads_and_let_the_bot_push_one_file(
    filled: Path, tmp_path: Path
) -> None:
    reviewer = reviewer_for(ReviewOptions("signed-merge", filled), tmp_path / "state")
    assert reviewer is not None
    rules, people = reviewer.settings.rules, {s.identity.user: s.identity for s in load_trust(filled)}

    def may_approve(person: str, path: str) -> bool:
        return rules.unmet(path, (people[person],)) == ""

    for path in ("policies/pod-security.yaml", "policies/exceptions/payments-probes.yaml",
                 "access/policies/debugging.yaml"):  # fmt: skip
        assert may_approve("carol", path) and not may_approve("bob", path) and not may_approve("alice", path)
    assert may_approve("bob", "apps/shop/base/deployment.yaml") and not may_approve("carol", "apps/shop/base/x.yaml")
    assert may_approve("dana", "apps/payments/base/service.yaml") and not may_approve("bob", "apps/payments/x.yaml")
    assert may_approve("alice", "clusters/prod/kustomization.yaml")
    bot = people["image-bot"]
    assert rules.may_push(bot, "clusters/dev/image-tags.yaml")
    assert not any(rules.may_push(bot, p) for p in ("clusters/prod/image-tags.yaml", "clusters/dev/kustomization.yaml",
                                                     "clusters/dev/image-tags.yaml.bak"))  # fmt: skip
    assert not rules.may_push(Identity("alice"), "clusters/dev/image-tags.yaml")
