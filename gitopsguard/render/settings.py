"""What one render may cost and read. A commit is hostile input: these bounds are what a contributor's
commit can make the controller spend (memory, time) and which files it can make it read."""

from __future__ import annotations

from dataclasses import dataclass

from gitopsguard.documents.limits import MiB, ReadLimits


@dataclass(frozen=True, kw_only=True)
class RenderSettings(ReadLimits):
    """Limits of one render: the bounds of reading its YAML (``ReadLimits``) and of running kustomize. Every
    one is refused with the file (and line) that passed it, before it is spent."""

    kustomize_timeout: float = 30.0  # seconds; the process group is killed after it
    kustomize_memory: int = 1024 * MiB  # kustomize's address space (RLIMIT_AS)
    allow_remote_bases: bool = False  # kustomize may fetch remote bases (git over https/ssh); never file:// or outside


DEFAULT = RenderSettings()
