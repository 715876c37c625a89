"""The shipped Deployment names a Slack token file from an optional Secret: with no channel configured (the
default), the file is not read and Slack is off, so the controller starts (it exited at start on the node with
"cannot read the Slack token file"); with a channel, a missing file still stops the start (fail closed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitopsguard.cli import slack_settings
from gitopsguard.errors import SourceError


def test_a_missing_slack_token_file_without_a_channel_leaves_slack_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITOPSGUARD_SLACK_TOKEN_FILE", str(tmp_path / "absent" / "token"))
    assert slack_settings("", "https://slack.com/api/") is None
    assert slack_settings(None, "https://slack.com/api/") is None


def test_a_missing_slack_token_file_with_a_channel_is_refused_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITOPSGUARD_SLACK_TOKEN_FILE", str(tmp_path / "absent" / "token"))
    with pytest.raises(SourceError, match=r"absent/token: cannot read the Slack token file"):
        slack_settings("#ops", "https://slack.com/api/")
