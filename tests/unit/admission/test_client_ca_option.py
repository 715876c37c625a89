"""`gitopsguard run --admission-client-ca`: checked before anything starts, so a webhook never comes up open
because its CA option was mistyped."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from gitopsguard.cli import main
from gitopsguard.devcluster.pki import webhook_client_certificates

RUN = ["run", "--repo", "x", "--path", "apps"]


@pytest.mark.parametrize(("options", "says"), [
    (["--admission-address", ":9443", "--admission-client-name", "kube-apiserver"],
     "--admission-client-name needs --admission-client-ca"),
    (["--admission-client-ca", "ca.pem"], "--admission-client-ca needs --admission-address"),
])  # fmt: skip
def test_client_ca_options_that_cannot_work_are_refused(options: list[str], says: str) -> None:
    result = CliRunner().invoke(main, [*RUN, *options])
    assert result.exit_code == 2 and says in result.output, result.output


def test_a_client_ca_file_holding_a_key_is_refused_before_anything_starts(tmp_path: Path) -> None:
    ca, _, key = webhook_client_certificates(datetime.now(UTC))
    (tmp_path / "ca.pem").write_bytes(ca + key)
    result = CliRunner().invoke(main, [*RUN, "--admission-address", ":9443", "--admission-client-ca",
                                       str(tmp_path / "ca.pem")])  # fmt: skip
    assert result.exit_code != 0
    assert f"{tmp_path / 'ca.pem'}: --admission-client-ca holds a private key" in result.output, result.output
