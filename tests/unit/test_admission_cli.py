"""`gitopsguard run`'s admission options are checked before anything starts."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from gitopsguard.cli import main
from gitopsguard.commands.admission import parse_address
from gitopsguard.errors import AdmissionError


@pytest.mark.parametrize(("options", "says"), [
    (["--admission-url", "https://127.0.0.1:9443"], "--admission-url needs --admission-address"),
    (["--admission-address", ":9443", "--admission-url", "http://127.0.0.1:9443"], "over https only"),
    (["--admission-address", ":9443", "--admission-namespace-label", "team"], "give KEY=VALUE"),
    (["--admission-address", ":9443", "--admission-failure-policy", "Open"], "'Open' is not one of"),
])  # fmt: skip
def test_admission_options_that_cannot_work_are_refused(options: list[str], says: str) -> None:
    result = CliRunner().invoke(main, ["run", "--repo", "x", "--path", "apps", *options])
    assert result.exit_code == 2 and says in result.output, result.output


EVERY_INTERFACE = "0.0.0.0"  # noqa: S104  (what ":8443" means, as in a Pod)


@pytest.mark.parametrize(("address", "bind"), [(":8443", (EVERY_INTERFACE, 8443)),
                                               ("127.0.0.1:9443", ("127.0.0.1", 9443))])  # fmt: skip
def test_an_admission_address_is_host_and_port(address: str, bind: tuple[str, int]) -> None:
    assert parse_address(address) == bind


@pytest.mark.parametrize("address", ["host:", "host:0", "host:70000", "host:ab"])
def test_an_admission_address_without_a_usable_port_is_refused(address: str) -> None:
    with pytest.raises(AdmissionError, match="give HOST:PORT"):
        parse_address(address)
