"""Secrets from the environment: a value in $NAME, or in the file $NAME_FILE names (as Kubernetes mounts
Secrets). Their values are never printed; errors name only the variable or the file."""

from __future__ import annotations

import os
from pathlib import Path

from gitopsguard.errors import SourceError


def secret(name: str, what: str) -> str | None:
    if value := os.environ.get(name):
        return value
    if path := os.environ.get(f"{name}_FILE"):
        try:
            return Path(path).read_text().strip() or None
        except OSError as error:
            raise SourceError(f"{path}: cannot read the {what} file ({error.strerror})") from error
    return None
