"""errors.py: its docstring's tree names every exception class gitopsguard defines, under its real parent."""

from __future__ import annotations

import importlib
import pkgutil
import re

import gitopsguard
from gitopsguard import errors
from gitopsguard.errors import GitOpsGuardError


def every_subclass(base: type) -> set[type]:
    found: set[type] = set(base.__subclasses__())
    for sub in list(found):
        found |= every_subclass(sub)
    return found


def test_the_docstring_tree_draws_every_error_class_under_its_parent() -> None:
    for module in pkgutil.walk_packages(gitopsguard.__path__, "gitopsguard."):
        if not module.name.endswith("__main__"):  # it runs the CLI
            importlib.import_module(module.name)
    tree = errors.__doc__ or ""
    depth = {m.group(2): len(m.group(1)) for m in re.finditer(r"^([ │├└─]*)(\w+Error)\b", tree, re.MULTILINE)}
    ours = [
        c for c in every_subclass(GitOpsGuardError) if c.__module__.startswith("gitopsguard.") and c.__name__[0] != "_"
    ]
    assert len(ours) > 20, "every module was imported, so every error class is known"
    for cls in ours:
        assert cls.__name__ in depth, f"{cls.__module__}.{cls.__name__} is missing from the tree in errors.py"
        parent = cls.__bases__[0].__name__
        assert depth[cls.__name__] > depth[parent], f"{cls.__name__} is not drawn under {parent}"
