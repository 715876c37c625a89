"""``gitopsguard check``: the offline policy check a pull request's CI runs (``check --root``, a repository laid
out in Units, is ``check_units.py``). Exit 0 allowed, 1 something would be blocked, 2 error. Namespaces the
manifests define with ``pod-security.kubernetes.io`` labels are honoured as Kubernetes Pod Security Admission
would (enforce blocks Pods, warn reports workloads).

The JSON form (``--format json``) is a stable schema, ``gitopsguard.io/check/v1``::

    {"schema": "gitopsguard.io/check/v1", "denyLevel": "LOW",
     "summary": {"objects": 3, "denied": 1, "findings": 4},
     "objects": [{"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "shop", "name": "web",
                  "file": "apps/web.yaml", "line": 1, "verdict": "denied",
                  "findings": [{"policy", "code", "control", "level", "severity", "message", "path",
                                "blocking": true}],
                  "excepted": [{"policy", "code", ..., "exception": "name (until ...): reason"}]}]}
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from gitopsguard.documents.files import read_bounded
from gitopsguard.errors import PolicyError, RenderError
from gitopsguard.model import Manifest
from gitopsguard.policy import (
    DenyLevel,
    Evaluation,
    ObjectResult,
    Policy,
    PolicySet,
    evaluate,
    load_policies,
    pack_policy,
)
from gitopsguard.policy.packs import BUILTINS, BadParametersError
from gitopsguard.policy.podsecurity_revision import LABELS_HINT, enforced_by_labels, with_pod_security
from gitopsguard.render import render
from gitopsguard.render.plain import read_text

SCHEMA = "gitopsguard.io/check/v1"
_COLOURS = {"HIGH": "red", "MED": "yellow", "LOW": "cyan"}
PSS_PACKS = frozenset({"pss-baseline", "pss-restricted"})


def run_check(
    paths: Sequence[Path], packs: Sequence[str], policies: Path | None, deny_level: str, fmt: str, *,
    pss_version: str | None = None,
) -> int:  # fmt: skip
    policy_set = load_policies(policies) if policies else PolicySet()
    extra = command_line_packs(packs, pss_version)
    policy_set = PolicySet(policy_set.policies + extra, policy_set.exceptions, policy_set.digest)
    manifests = [m for path in paths for m in read_manifests(path)]
    result = with_pod_security(evaluate(manifests, policy_set, now=datetime.now(UTC), deny_level=DenyLevel(deny_level)))
    if fmt == "json":
        pretty = sys.stdout.isatty()  # indenting 5,000 objects' findings costs more than checking them
        click.echo(json.dumps(as_json(result), indent=2 if pretty else None, separators=None if pretty else (",", ":")))
    else:
        print_text(result, colour=sys.stdout.isatty())
    return 1 if result.blocked else 0


def command_line_packs(packs: Sequence[str], pss_version: str | None) -> tuple[Policy, ...]:
    """The packs of ``--pack``, the pss ones at ``--pss-version`` (a PolicyError when it is not a version, or
    when no pss pack is turned on: a version that checks nothing would look like a pass)."""
    if pss_version is None:
        return tuple(pack_policy(name) for name in packs)
    if not set(packs) & PSS_PACKS:
        raise PolicyError(f"--pss-version {pss_version}: applies to the pss-baseline and pss-restricted packs; turn "
                          "one on with --pack (a policy file sets its own with params: {version: ...})")  # fmt: skip
    chosen = []
    for name in packs:
        policy = pack_policy(name)
        if name in PSS_PACKS:
            try:
                policy = replace(policy, check=BUILTINS[name]({"version": pss_version}))
            except BadParametersError as error:
                raise PolicyError(f"--pss-version: {error}") from None
        chosen.append(policy)
    return tuple(chosen)


def read_manifests(path: Path) -> list[Manifest]:
    """A file of YAML documents, or a directory (kustomize when it has a kustomization, else plain YAML)."""
    if path.is_file():  # within the same bounds as a render: size before reading, no symlink, YAML nodes
        return read_text(read_bounded(path, Path.cwd(), RenderError, shown=_shown(path)), _shown(path))
    if not path.is_dir():
        raise RenderError(f"{path}: no such file or directory")
    cwd = Path.cwd().resolve()
    resolved = path.resolve()
    root = cwd if resolved.is_relative_to(cwd) else _repository_of(resolved)
    return list(render(root, resolved.relative_to(root).as_posix() or ".").manifests)


def _repository_of(directory: Path) -> Path:
    """The git work tree a directory outside the working directory is in (renders may read only inside
    it: an overlay's ``../../base`` is fine there), else the directory itself."""
    return next((d for d in (directory, *directory.parents) if (d / ".git").exists()), directory)


def _shown(path: Path) -> str:
    resolved = path.resolve()
    return resolved.relative_to(Path.cwd().resolve()).as_posix() if resolved.is_relative_to(Path.cwd()) else str(path)


def split_origin(origin: str) -> tuple[str, int]:
    """``apps/web.yaml:14`` as (file, line); line 0 when the origin names none."""
    file, _, line = origin.rpartition(":")
    return (file, int(line)) if line.isdigit() else (origin, 0)


def as_json(result: Evaluation) -> dict[str, Any]:
    objects = []
    for r in result.results:
        file, line = split_origin(r.origin)
        blocking = {id(f) for f in result.blocking(r)}
        objects.append({
            "apiVersion": r.api_version, "kind": r.key.kind, "namespace": r.key.namespace, "name": r.key.name,
            "file": file, "line": line, "verdict": "denied" if r.denied else "allowed",
            "findings": [{**f.as_json(), "blocking": id(f) in blocking} for f in r.findings],
            "excepted": [{**f.as_json(), "exception": str(why)} for f, why in r.excepted],
        })  # fmt: skip
    return {
        "schema": SCHEMA, "denyLevel": result.deny_level.value,
        "summary": {"objects": len(objects), "denied": len(result.blocked),
                    "findings": sum(len(r.findings) for r in result.results)},
        "objects": objects,
    }  # fmt: skip


def print_text(result: Evaluation, *, colour: bool) -> None:
    print_findings(result, colour=colour)
    _summary(result, result.results)


def print_findings(result: Evaluation, *, colour: bool, indent: str = "") -> None:
    """Each object with findings or excepted findings, and those findings."""

    def style(text: str, **how: Any) -> str:
        return click.style(text, **how) if colour else text

    for r in (r for r in result.results if r.findings or r.excepted):
        verdict = style("DENIED", fg="red", bold=True) if r.denied else style("allowed", fg="green")
        click.echo(f"{indent}{r.origin}: {r.key} {verdict}")
        blocking = set(result.blocking(r))
        for f in sorted(r.findings, key=lambda f: (-f.severity.rank, f.code, f.path)):
            mark = " (blocks)" if f in blocking else ""
            severity = style(f.severity.value, fg=_COLOURS[f.severity.value])
            click.echo(f"{indent}  {severity} {f.code} {f.message}{mark}")
            click.echo(f"{indent}      at {f.path or '(object)'} - policy {f.policy}"
                       + (f"; fix: {f.fix}" if f.fix else ""))  # fmt: skip
        for f, why in r.excepted:
            click.echo(f"{indent}  excepted {f.code} {f.message} - {why}")


def _summary(result: Evaluation, results: tuple[ObjectResult, ...]) -> None:
    findings = sum(len(r.findings) for r in results)
    click.echo(f"{len(results)} objects, {findings} findings, {len(result.blocked)} denied "
               f"(deny level {result.deny_level.value})")  # fmt: skip
    if result.blocked:
        click.echo("Fix the findings marked (blocks), or add a PolicyException with a reason and an expiry.")
    if any(enforced_by_labels(f) for r in result.blocked for f in r.findings):
        click.echo(LABELS_HINT)
