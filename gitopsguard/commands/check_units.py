"""``gitopsguard check --root PATH``: a checkout laid out in Units (docs/units.md), judged offline as the Units
loop (``fleet.py``) would judge it, so that a pull request the loop would refuse is refused in its CI, with the
loop's own words, before a reviewer trusts a green check.

Nothing here decides anything of its own: each step calls what the loop calls, in the loop's order.

1. the root path, rendered and gated by the platform's policies (``heads.judge``, as ``Fleet._fetch_if_due``);
2. the Units its render declares (``units_of_root``: unreadable, overlapping), those aimed at the controller's
   namespace (``fleet_standing.misplaced``), with a misplaced ``policiesPath`` (the same), in a
   cycle or behind a missing dependency (``apply_order``), as ``Fleet._serve``;
3. each other Unit in apply order, as its pass would: its folder rendered with its default namespace and gated
   by the platform's policies plus its own (``fleet.unit_of``, ``heads.judge``: ``policy/compose.restricting``),
   refused whole when it declares a Unit (``minted_units``), as ``Fleet._judged``. A suspended Unit is judged
   too: its folder is applied the moment it is resumed.

The working directory is the checkout (``--root`` is a folder of it, as for ``run --root``); what the loop
would ask the API server is answered from the checkout (``check_offline.py``). Each refusal carries the
status reason the loop would give (``commands.units.outcome_of``). ``--format json`` is ``as_json``'s stable
schema, ``gitopsguard.io/check-units/v1`` (docs/units.md, "Checking a pull request").
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from gitopsguard.audit import printable
from gitopsguard.commands.check import as_json as objects_json
from gitopsguard.commands.check import print_findings, split_origin
from gitopsguard.commands.check_offline import OfflineCluster
from gitopsguard.commands.reconcile_once import unit_name_for
from gitopsguard.commands.units import outcome_of
from gitopsguard.errors import UnitError
from gitopsguard.fleet import unit_of
from gitopsguard.fleet_standing import misplaced
from gitopsguard.gate import RevisionBlockedError
from gitopsguard.heads import Head, judge
from gitopsguard.model import Manifest
from gitopsguard.policy import DenyLevel, Evaluation
from gitopsguard.reconcile import ReconcileResult, Unit, renderer
from gitopsguard.render.settings import DEFAULT as DEFAULT_RENDER
from gitopsguard.source import Revision
from gitopsguard.units import Reason, UnitRef, UnitSpec, apply_order
from gitopsguard.units.root import Root, RootUnits, minted_units, units_of_root
from gitopsguard.units.spec import DEFAULTS, normal_path

SCHEMA = "gitopsguard.io/check-units/v1"
# What the checked tree is called where the loop would name a commit ("revision working-tree is blocked ...").
WORKING_TREE = "working-tree"


@dataclass(frozen=True)
class Verdict:
    """The root path's or one Unit's verdict. ``reason`` is the status reason the loop would write ("" when it
    passes); ``message`` why, as the loop words it; ``evaluation`` the findings, when it was gated."""

    subject: str  # "root path clusters/dev", "Unit/shop/web", or "Unit object FILE:LINE" when unnamed
    origin: str  # where it is declared: the Unit's file and line ("" for the root path)
    path: str  # the folder it applies ("" when unknown)
    reason: str = ""
    message: str = ""
    evaluation: Evaluation | None = None
    suspended: bool = False
    ref: UnitRef | None = None  # the Unit's, when its name could be read

    @property
    def refused(self) -> bool:
        return bool(self.reason)


@dataclass(frozen=True)
class UnitsCheck:
    """The root path's verdict and every Unit's: those served in apply order, then the refused by name."""

    root: Verdict
    units: tuple[Verdict, ...]
    deny_level: DenyLevel

    @property
    def refused(self) -> tuple[Verdict, ...]:
        return tuple(v for v in (self.root, *self.units) if v.refused)


def check_units(
    checkout: Path, root_path: str, *, policies_path: str | None, deny_level: DenyLevel, now: datetime,
    namespace: str = "default",
) -> UnitsCheck:  # fmt: skip
    """The verdicts on the checkout's root path and its Units (see the module); never raises for what the tree
    holds: whatever the loop would refuse comes back as a refused Verdict. ``namespace`` is the root's default
    namespace (``run --namespace``): a Unit object that names none is in it."""
    revision = Revision(WORKING_TREE, checkout, "", "")
    root = Unit(unit_name_for(root_path), normal_path(root_path), namespace, policies_path=policies_path,
                deny_level=deny_level)  # fmt: skip
    render, cluster = _Renders(), OfflineCluster()
    # 1. the root path, as the loop's fetch judges it; its Namespaces exist before any Unit is passed
    root_head = judge(root, revision, cluster, render, now)
    cluster.add_namespaces(root_head.manifests)
    root_verdict = _verdict(f"root path {root.path}", "", root.path, root_head)
    # 2. the Units the root declares (read from its render, as the loop reads its applied commit's; none when it
    #    did not render, which its verdict says), refused first
    declared = units_of_root(Root(root.path, root.name), render.kept(root.path), DEFAULTS, namespace=namespace)
    specs = declared.units
    inside = misplaced(specs, root.path, policies_path)
    order = apply_order(tuple(s for s in specs if s.ref not in inside))
    refused = {**declared.refused_units, **inside, **order.refused}
    # 3. each other Unit, in apply order, as its pass would judge its folder
    by_ref = {s.ref: s for s in specs}
    cluster.learn_kinds(render.kept(root.path))
    served = [_judged(by_ref[ref], root, revision, cluster, render, now) for ref in order.order]
    return UnitsCheck(root_verdict, (*served, *_refusals(declared, by_ref, refused)), deny_level)


class _Renders:
    """The loop's renderer (``reconcile.renderer``, the default bounds), a folder's render kept until it is
    forgotten: one Unit's at a time (a thousand folders of hostile size are not held at once)."""

    def __init__(self) -> None:
        self._render = renderer(None, DEFAULT_RENDER)
        self._kept: dict[str, tuple[Manifest, ...]] = {}

    def __call__(self, checkout: Path, path: str, commit: str) -> tuple[Manifest, ...]:
        if path not in self._kept:
            self._kept[path] = self._render(checkout, path, commit)
        return self._kept[path]

    def kept(self, path: str) -> tuple[Manifest, ...]:
        return self._kept.get(path, ())

    def forget(self, path: str) -> None:
        self._kept.pop(path, None)


def _judged(
    spec: UnitSpec, root: Unit, revision: Revision, cluster: OfflineCluster, render: _Renders, now: datetime
) -> Verdict:
    """A Unit's folder judged as its pass would (``Fleet._judged``); its CRDs and Namespaces exist after it.
    The kinds its own CRDs define are learnt first: the loop's discovery knows them once they were applied."""
    with contextlib.suppress(Exception):  # judge() renders it again and refuses it, whatever it raised
        cluster.learn_kinds(render(revision.checkout, spec.path, revision.commit))
    head = judge(unit_of(spec, root), revision, cluster, render, now)
    render.forget(spec.path)
    minted = minted_units(spec, head.manifests) if head.refusal is None else ()
    if minted:
        more = f" ({len(minted) - 3} more)" if len(minted) > 3 else ""
        head = Head(revision, refusal=UnitError("; ".join(minted[:3]) + more))
    cluster.add_namespaces(head.manifests)
    verdict = _verdict(str(spec.ref), spec.origin, spec.path, head)
    return replace(verdict, suspended=spec.suspend, ref=spec.ref)


def _verdict(subject: str, origin: str, path: str, head: Head) -> Verdict:
    if head.refusal is None:
        return Verdict(subject, origin, path, evaluation=head.evaluation)
    error = head.refusal
    outcome = outcome_of(ReconcileResult(subject, WORKING_TREE, (), error=str(error), failure=error), 0)
    evaluation = error.evaluation if isinstance(error, RevisionBlockedError) else None
    return Verdict(subject, origin, path, outcome.failure.value, str(error), evaluation)


def _refusals(declared: RootUnits, by_ref: dict[UnitRef, UnitSpec], refused: dict[UnitRef, str]) -> list[Verdict]:
    """The Units refused before any pass, as the loop's status says (``InvalidSpec``), by name; then those whose
    name cannot be read, by file and line."""
    found = []
    for ref, why in sorted(refused.items()):
        spec = by_ref.get(ref)
        origin = spec.origin if spec else why.split(": ", 1)[0]
        found.append(Verdict(str(ref), origin, spec.path if spec else "", Reason.INVALID_SPEC.value, why, ref=ref))
    named = set(refused.values())
    for why in declared.refused:
        if why not in named:
            where = why.split(": ", 1)[0]
            found.append(Verdict(f"Unit object {where}", where, "", Reason.INVALID_SPEC.value, why))
    return found


def run_check_root(root: str, policies: Path | None, deny_level: str, fmt: str, *, colour: bool) -> int:
    """``check --root``: print every verdict (``fmt`` text or json); 1 when anything is refused, else 0."""
    checkout = Path.cwd()
    policies_path = _in_checkout(str(policies or "policies"), checkout, "--policies")
    if policies is not None and not (checkout / policies_path).is_dir():  # a typo would check against nothing
        raise click.UsageError(f"--policies {policies}: no such folder in the checkout {checkout}")
    result = check_units(checkout, _in_checkout(root, checkout, "--root"), policies_path=policies_path,
                         deny_level=DenyLevel(deny_level), now=datetime.now(UTC))  # fmt: skip
    if fmt == "json":
        click.echo(json.dumps(as_json(result), indent=2 if colour else None))
    else:
        print_units(result, colour=colour)
    return 1 if result.refused else 0


def _in_checkout(given: str, checkout: Path, flag: str) -> str:
    """A folder of the checkout as the loop names it (relative to the repository's top, which ``check --root``
    runs in); an absolute path is taken when it lies in the checkout."""
    if normal_path(given) == ".":
        raise click.UsageError(f"{flag} {given!r}: name a folder of the checkout, not its top (the run it mirrors "
                               "would read every folder as the root's)")  # fmt: skip
    path = Path(given)
    if path.is_absolute():
        if not path.resolve().is_relative_to(checkout.resolve()):
            raise click.UsageError(f"{flag} {given}: not in the checkout {checkout}; run check in the repository's "
                                   "top folder, and name the folder relative to it")  # fmt: skip
        path = path.resolve().relative_to(checkout.resolve())
    if ".." in path.parts:
        raise click.UsageError(f"{flag} {given}: name a folder of the checkout without '..'")
    return normal_path(path.as_posix())


def print_units(result: UnitsCheck, *, colour: bool) -> None:
    """One block per verdict (the root path first): its line, then why it is refused, or the findings that do
    not block; then a summary."""
    for verdict in (result.root, *result.units):
        _print_verdict(verdict, colour=colour)
    passed = sum(1 for v in result.units if not v.refused)
    click.echo(f"{len(result.units)} Units: {passed} pass, {len(result.units) - passed} refused "
               f"(deny level {result.deny_level.value})")  # fmt: skip
    if result.root.refused:
        click.echo(f"The root path {result.root.path} is refused: the loop would apply none of it, and its Units "
                   "would stay as the last applied commit declares them.")  # fmt: skip
    if result.refused:
        click.echo("Each refusal above names the file and what to change; the loop would refuse the same.")


def _print_verdict(verdict: Verdict, *, colour: bool) -> None:
    where = ", ".join(x for x in (verdict.origin, f"path {verdict.path}" if verdict.path else "",
                                  "suspended" if verdict.suspended else "") if x)  # fmt: skip
    head = printable(verdict.subject + (f" ({where})" if where and verdict.origin not in verdict.subject else ""))
    if verdict.refused:
        refused = click.style("REFUSED", fg="red", bold=True) if colour else "REFUSED"
        click.echo(f"{head}: {refused} ({verdict.reason})")
        for line in verdict.message.splitlines():  # a tenant's text cannot forge a line of its own
            click.echo(f"  {printable(line)}")
        return
    objects = len(verdict.evaluation.results) if verdict.evaluation else 0
    click.echo(f"{head}: passes ({objects} objects)")
    if verdict.evaluation is not None:
        print_findings(verdict.evaluation, colour=colour, indent="  ")


def as_json(result: UnitsCheck) -> dict[str, Any]:
    """The stable form CI reads, ``gitopsguard.io/check-units/v1``: the root path's verdict and each Unit's, with
    its objects as ``check``'s own schema gives them (``gitopsguard.io/check/v1``'s ``objects``)."""
    passed = sum(1 for v in result.units if not v.refused)
    return {
        "schema": SCHEMA, "denyLevel": result.deny_level.value,
        "summary": {"units": len(result.units), "passed": passed, "refused": len(result.units) - passed,
                    "rootRefused": result.root.refused},
        "root": {"path": result.root.path, **_verdict_json(result.root)},
        "units": [_unit_json(v) for v in result.units],
    }  # fmt: skip


def _unit_json(verdict: Verdict) -> dict[str, Any]:
    file, line = split_origin(verdict.origin)
    ref = verdict.ref
    return {"namespace": ref.namespace if ref else None, "name": ref.name if ref else None, "file": file,
            "line": line, "path": verdict.path, "suspended": verdict.suspended, **_verdict_json(verdict)}  # fmt: skip


def _verdict_json(verdict: Verdict) -> dict[str, Any]:
    objects = objects_json(verdict.evaluation)["objects"] if verdict.evaluation is not None else []
    return {"verdict": "refused" if verdict.refused else "passed", "reason": verdict.reason,
            "message": verdict.message, "objects": objects}  # fmt: skip
