"""The trust file is written into git's allowed-signers file; nothing in it may change that file's meaning:
user names are principals without separators or wildcards, keys are plain "type base64" lines."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gitopsguard.errors import GitOpsGuardError
from gitopsguard.evidence.trust import load_trust

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeFakeFakeFakeFakeFakeFakeFakeFake alice"


def trust(tmp_path: Path, **signer: object) -> Path:
    path = tmp_path / "trust.yaml"
    path.write_text(yaml.safe_dump({"signers": [{"user": "alice", "keys": [KEY], **signer}]}))
    return path


@pytest.mark.parametrize("user", ["alice,bob", "*", "al ice", "alice\nbob ssh-ed25519 AAAA", "bob?", ""])
def test_a_user_name_that_would_be_several_principals_or_a_pattern_is_refused(tmp_path: Path, user: str) -> None:
    with pytest.raises(GitOpsGuardError, match=r"signers\[0\]"):
        load_trust(trust(tmp_path, user=user))


@pytest.mark.parametrize("key", ['cert-authority ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA', 'namespaces="git" ' + KEY,
                                 "ssh-ed25519", "not a key at all"])  # fmt: skip
def test_a_key_line_with_options_or_no_key_is_refused(tmp_path: Path, key: str) -> None:
    with pytest.raises(GitOpsGuardError, match=r"signers\[0\]\.keys"):
        load_trust(trust(tmp_path, keys=[key]))


def test_a_plain_key_line_is_kept_without_its_comment(tmp_path: Path) -> None:
    (signer,) = load_trust(trust(tmp_path))
    assert signer.keys == (" ".join(KEY.split()[:2]),) and signer.identity.user == "alice"
