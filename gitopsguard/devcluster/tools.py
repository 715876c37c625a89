"""`python -m gitopsguard.devcluster.tools [--for-tests]`: install the tools gitopsguard itself runs (git,
ssh-keygen, gpg), and with ``--for-tests`` those only the test suite runs (sshd), with apt when they are
missing; `make install` and `make test` call it, so a fresh machine needs nothing by hand."""

from __future__ import annotations

import sys

from gitopsguard.devcluster.progress import StagedProgress
from gitopsguard.devcluster.system import TEST_COMMANDS, TOOL_COMMANDS, ensure_packages, interactive_confirm
from gitopsguard.errors import MissingDependencyError


def main() -> None:
    commands = {**TOOL_COMMANDS, **TEST_COMMANDS} if "--for-tests" in sys.argv[1:] else TOOL_COMMANDS
    try:
        ensure_packages(commands, StagedProgress(), confirm=interactive_confirm)
    except MissingDependencyError as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    main()
