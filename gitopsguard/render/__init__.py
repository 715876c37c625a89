"""The render stage: a directory of the repository in, a list of desired objects out.

A directory with a ``kustomization.yaml`` (or ``.yml``, or ``Kustomization``) is built with kustomize;
any other directory is read as plain YAML, recursively. Errors name the file, and the line where known.
"""

from gitopsguard.render.render import Rendered, render
from gitopsguard.render.settings import RenderSettings

__all__ = ["RenderSettings", "Rendered", "render"]
