"""`python -m gitopsguard.devcluster.tools`: install the tools gitopsguard itself runs (git, ssh-keygen,
gpg) with apt when they are missing; `make install` calls it, so a fresh machine needs nothing by hand."""

from __future__ import annotations

import sys

from gitopsguard.devcluster.progress import StagedProgress
from gitopsguard.devcluster.system import TOOL_COMMANDS, ensure_packages, interactive_confirm
from gitopsguard.errors import MissingDependencyError


def main() -> None:
    try:
        ensure_packages(TOOL_COMMANDS, StagedProgress(), confirm=interactive_confirm)
    except MissingDependencyError as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    main()
