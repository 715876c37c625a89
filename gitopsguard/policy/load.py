"""Reading ``policies/``: Policy and PolicyException files, checked whole before any goes into force.

Every error names the file and line, and says what is wrong: invalid YAML, an unknown built-in or field,
a CEL expression that does not compile, an exception without a reason or an expiry.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from gitopsguard.documents.bounds import Budget
from gitopsguard.documents.files import read_bounded, resolved, shown, yaml_files
from gitopsguard.documents.limits import LIMITS, ReadLimits
from gitopsguard.documents.lines import Lined, read_documents
from gitopsguard.errors import PolicyError
from gitopsguard.model import API_VERSION, parse_duration
from gitopsguard.policy import cel
from gitopsguard.policy.model import (
    Check,
    Context,
    Copy,
    Enforcement,
    Hit,
    LiveAction,
    Mutation,
    Policy,
    PolicyException,
    PolicySet,
    Selector,
    Severity,
)
from gitopsguard.policy.packs import BUILTINS, BadParametersError

DEFAULT_GRACE = timedelta(hours=1)
_E = TypeVar("_E")


def load_policies(
    directory: Path, root: Path | None = None, *, settings: ReadLimits = LIMITS, units: bool = False
) -> PolicySet:
    """Every policy and exception below ``directory``; names in errors are relative to ``root``. The files
    are read within the same bounds as a render (no symlinks, sizes, folder depth, YAML nodes). ``units``:
    a Unit's own folder (``parse_policies``)."""
    if not directory.is_dir():
        raise PolicyError(f"{directory}: no such policy directory")
    name = shown(directory, root or directory.parent)
    base = resolved(root or directory.parent, str(root or directory.parent), PolicyError)
    if directory.is_symlink() or not resolved(directory, name, PolicyError).is_relative_to(base):
        raise PolicyError(f"{name}: is a symlink or leaves the checkout; "
                          "policies are read only from files in the commit")  # fmt: skip
    files = yaml_files(directory.resolve(), base, PolicyError, settings=settings, skip_hidden=False)
    texts = {shown(p, base): read_bounded(p, base, PolicyError, settings) for p in files}
    return parse_policies(texts, Budget(settings), units=units)


def load_own_policies(checkout: Path, path: str, *, settings: ReadLimits = LIMITS) -> PolicySet:
    """A Unit's own policies, at ``path`` in the checkout: none when nothing is there (a team without
    policies yet). Every step of the path must be a plain folder: a symbolic link anywhere on it (the team's
    folder itself included) would make the Unit judged by files its team does not own, so it is refused."""
    node = checkout
    for step in path.split("/"):
        node = node / step
        if node.is_symlink():
            raise PolicyError(f"{shown(node, checkout)}: is a symlink, on the way to a Unit's policiesPath "
                              f"{path}; policies are read only from folders in the commit: replace it")  # fmt: skip
        if not os.path.lexists(node):
            return PolicySet()
        if not node.is_dir():
            raise PolicyError(f"{shown(node, checkout)}: is not a folder, on the way to a Unit's policiesPath "
                              f"{path}; make it a folder of policy files, or change the policiesPath")  # fmt: skip
    return load_policies(node, root=checkout, settings=settings, units=True)


def parse_policies(texts: Mapping[str, str], budget: Budget | None = None, *, units: bool = False) -> PolicySet:
    """The policy set in the given files (name -> text); raises PolicyError at the first fault. ``units``: the
    files are a Unit's own, whose exceptions ``compose.restricting`` refuses whatever they name (so that one
    naming a platform policy is refused as an exception, not as naming an unknown policy)."""
    policies: list[Policy] = []
    exceptions: list[PolicyException] = []
    budget = budget or Budget()
    documents = [(f"{name}:{line}", name, document) for name, text in sorted(texts.items())
                 for line, document in read_documents(name, text, budget)]  # fmt: skip
    if units:
        _within_unit_bounds(documents)
    for where, name, document in documents:
        kind = _require(document, "kind", str, where)
        if document.get("apiVersion") != API_VERSION:
            raise PolicyError(f"{where}: apiVersion must be {API_VERSION}")
        if kind == "Policy":
            policies.append(_policy(document, name))
        elif kind == "PolicyException":
            exceptions.append(_exception(document, name))
        else:
            raise PolicyError(f"{where}: kind {kind!r} is not Policy or PolicyException")
    _unique((p.name, p.origin) for p in policies)
    known = {p.name for p in policies}
    for exception in () if units else exceptions:
        unknown = sorted(exception.policies - known)
        if unknown:
            raise PolicyError(f"{exception.origin}: exception names unknown policies: {', '.join(unknown)}")
    digest = hashlib.sha256("\0".join(f"{n}\0{t}" for n, t in sorted(texts.items())).encode()).hexdigest()[:16]
    return PolicySet(tuple(policies), tuple(exceptions), digest)


# A Unit's own folder is its team's to write, and is loaded (CEL compiled: 20,000 expressions took 13 s) and run
# in the round every Unit waits on: bounded well above what a team's rules need.
MAX_UNIT_POLICIES = 100
MAX_UNIT_VALIDATIONS = 200
MAX_UNIT_EXPRESSION_CHARS = 100_000  # all of a Unit's expressions together (one may hold 100,000: CEL's limit)


def _within_unit_bounds(documents: list[tuple[str, str, Lined]]) -> None:
    policies = validations = characters = 0
    for where, _, document in documents:
        spec = document.get("spec")
        listed = spec.get("validations") if isinstance(spec, dict) else None
        expressions = [v.get("expression") for v in listed if isinstance(v, dict)] if isinstance(listed, list) else []
        policies += document.get("kind") == "Policy"
        validations += len(expressions)
        characters += sum(len(e) for e in expressions if isinstance(e, str))
        counted = ((policies, MAX_UNIT_POLICIES, "policies"), (validations, MAX_UNIT_VALIDATIONS, "validations"),
                   (characters, MAX_UNIT_EXPRESSION_CHARS, "characters of CEL expressions"))  # fmt: skip
        for count, bound, what in counted:
            if count > bound:
                raise PolicyError(f"{where}: a Unit's own policies may hold at most {bound} {what} together (this "
                                  "document passes it): they are loaded and run in the round every Unit waits on; "
                                  "merge rules, or ask the platform to add them to its own policies")  # fmt: skip


def pack_policy(name: str) -> Policy:
    """A built-in pack turned on from the command line: enforced, matching everything."""
    if name not in BUILTINS:
        raise PolicyError(f"--pack {name}: no such pack; choose from {', '.join(sorted(BUILTINS))}")
    return Policy(
        name,
        name,
        Severity.MED,
        f"--pack {name}",
        Selector(),
        None,
        BUILTINS[name]({}),
        None,
        Enforcement.ENFORCE,
        LiveAction.REPORT,
        DEFAULT_GRACE,
    )


def _require(node: Lined, key: str, kind: type[_E], where: str) -> _E:
    value = node.get(key)
    if not isinstance(value, kind) or not value:
        raise PolicyError(f"{where}: `{key}` is required ({kind.__name__})")
    return value


def _at(name: str, node: Any, key: str | None = None) -> str:
    if isinstance(node, Lined):
        return f"{name}:{node.line_of(key) if key else node.line}"
    return name


_POLICY_FIELDS = {"code", "severity", "enforcement", "match", "exclude", "builtin", "validations", "mutate", "live"}


def _policy(document: Lined, name: str) -> Policy:
    where = _at(name, document)
    metadata = _require(document, "metadata", dict, where)
    policy_name = _require(metadata, "name", str, _at(name, metadata))  # type: ignore[arg-type]
    spec = _require(document, "spec", dict, where)
    assert isinstance(spec, Lined)  # noqa: S101  (every mapping the loader builds is Lined)
    unknown = sorted(set(spec) - _POLICY_FIELDS)
    if unknown:
        raise PolicyError(f"{_at(name, spec, unknown[0])}: unknown field spec.{unknown[0]} in policy {policy_name}")
    check = _check(spec, name)
    mutation = _mutation(spec.get("mutate"), name)
    if check is None and mutation is None:
        raise PolicyError(f"{where}: policy {policy_name} needs `builtin`, `validations` or `mutate`")
    code = str(spec.get("code") or "")
    if not code and "validations" in spec:
        raise PolicyError(f"{where}: policy {policy_name} needs a `code` (such as GG3001) for its findings")
    live = spec.get("live") or {}
    return Policy(
        name=policy_name,
        code=code or policy_name,
        origin=where,
        severity=_enum(Severity, spec.get("severity", "MED"), _at(name, spec, "severity"), "severity"),
        match=_selector(spec.get("match"), _at(name, spec, "match")),
        exclude=_selector(spec["exclude"], _at(name, spec, "exclude")) if spec.get("exclude") else None,
        check=check,
        mutation=mutation,
        enforcement=_enum(Enforcement, spec.get("enforcement", "audit"), _at(name, spec, "enforcement"), "enforcement"),
        live=_enum(LiveAction, live.get("action", "report"), _at(name, live, "action"), "live.action"),
        grace=_duration(live.get("gracePeriod"), _at(name, live, "gracePeriod")),
    )


def _enum(kind: Callable[[str], _E], value: Any, where: str, field: str) -> _E:
    try:
        return kind(str(value))
    except ValueError:
        choices = ", ".join(str(v) for v in kind)  # type: ignore[attr-defined]
        raise PolicyError(f"{where}: {field} {value!r} is not one of {choices}") from None


def _duration(text: Any, where: str) -> timedelta:
    if text is None:
        return DEFAULT_GRACE
    parsed = parse_duration(text)
    if parsed is None:
        raise PolicyError(f"{where}: gracePeriod {text!r} is not a duration such as 30s, 10m, 2h or 1d")
    return parsed


def _selector(node: Any, where: str) -> Selector:
    if node is None:
        return Selector()
    if not isinstance(node, dict) or set(node) - {"kinds", "namespaces", "names", "labels"}:
        raise PolicyError(f"{where}: a selector has only kinds, namespaces, names and labels")

    def names(key: str) -> frozenset[str]:
        value = node.get(key) or []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise PolicyError(f"{where}: `{key}` must be a list of names")
        return frozenset(value)

    labels = node.get("labels") or {}
    if not isinstance(labels, dict):
        raise PolicyError(f"{where}: `labels` must map label names to values")
    return Selector(names("kinds"), names("namespaces"), names("names"), {str(k): str(v) for k, v in labels.items()})


def _check(spec: Lined, name: str) -> Check | None:
    builtin, validations = spec.get("builtin"), spec.get("validations")
    if builtin is not None and validations is not None:
        raise PolicyError(f"{_at(name, spec, 'validations')}: a policy has `builtin` or `validations`, not both")
    if builtin is not None:
        return _builtin(builtin, _at(name, spec, "builtin"))
    if validations is not None:
        if not isinstance(validations, list) or not validations:
            raise PolicyError(f"{_at(name, spec, 'validations')}: `validations` must be a non-empty list")
        return _cel_check([_validation(v, name) for v in validations])
    return None


def _builtin(node: Any, where: str) -> Check:
    chosen = node.get("name") if isinstance(node, dict) else node
    params = (node.get("params") or {}) if isinstance(node, dict) else {}
    if not isinstance(params, dict):
        raise PolicyError(f"{where}: `params` must be a mapping of parameter names to values")
    if not isinstance(chosen, str) or chosen not in BUILTINS:
        raise PolicyError(f"{where}: unknown built-in {chosen!r}; choose from {', '.join(sorted(BUILTINS))}")
    try:
        return BUILTINS[chosen](params)
    except BadParametersError as error:
        raise PolicyError(f"{where}: built-in {chosen} {error}") from None


Validation = tuple[cel.Expression, str, str, str]  # expression, message, field path, file:line


def _validation(node: Any, name: str) -> Validation:
    where = _at(name, node, "expression")
    if not isinstance(node, dict) or not isinstance(node.get("expression"), str):
        raise PolicyError(f"{where}: each validation needs an `expression`")
    try:
        expression = cel.compile_expression(node["expression"])
    except cel.CelCompileError as error:
        raise PolicyError(f"{where}: CEL expression does not compile:\n{error}") from None
    message = str(node.get("message") or f"failed: {node['expression']}")
    return expression, message, str(node.get("path") or ""), where


def _cel_check(validations: list[Validation]) -> Check:
    def check(body: dict[str, Any], ctx: Context) -> list[Hit]:
        hits = []
        for expression, message, path, where in validations:
            try:
                if not expression.holds(body, ctx.namespace):
                    hits.append(Hit("", message, path, fix=f"see the policy at {where}"))
            except cel.CelRuntimeError as error:  # fail closed, and say exactly where
                hits.append(
                    Hit(
                        "",
                        f"{where}: CEL expression failed on this object: {error}",
                        path,
                        fix=f"guard the expression with has(), or fix the object; policy at {where}",
                    )
                )
        return hits

    return check


def _mutation(node: Any, name: str) -> Mutation | None:
    if node is None:
        return None
    where = _at(name, node)
    if not isinstance(node, dict) or set(node) - {"addLabels", "addAnnotations", "setDefaults"}:
        raise PolicyError(f"{where}: `mutate` has only addLabels, addAnnotations and setDefaults")
    defaults = []
    for item in node.get("setDefaults") or []:
        at = _at(name, item)
        if not isinstance(item, dict) or not isinstance(item.get("path"), str) or "value" not in item:
            raise PolicyError(
                f"{at}: each of setDefaults needs `path` (such as spec.ttlSecondsAfterFinished) and `value`"
            )
        value = _default_value(item["value"], at)
        defaults.append((frozenset(item.get("kinds") or []), tuple(item["path"].split(".")), value))
    labels, annotations = node.get("addLabels") or {}, node.get("addAnnotations") or {}
    if not isinstance(labels, dict) or not isinstance(annotations, dict):
        raise PolicyError(f"{where}: addLabels and addAnnotations map names to values")
    return Mutation(
        {str(k): str(v) for k, v in labels.items()}, {str(k): str(v) for k, v in annotations.items()}, tuple(defaults)
    )


COPY = "$copy"  # in a default's value: {$copy: spec.selector} is a copy of the object's own field


def _default_value(node: Any, where: str) -> Any:
    """A default's value, with each ``{$copy: FIELD.PATH}`` mapping read as a Copy of that field."""
    if isinstance(node, dict):
        if COPY not in node:
            return {k: _default_value(v, where) for k, v in node.items()}
        path = node[COPY]
        if len(node) != 1 or not isinstance(path, str) or not all(path.split(".")):
            raise PolicyError(f"{where}: `{COPY}` stands alone in its mapping and names a field, "
                              "such as {$copy: spec.selector}")  # fmt: skip
        return Copy(tuple(path.split(".")))
    if isinstance(node, list):
        return [_default_value(v, where) for v in node]
    return node


def _exception(document: Lined, name: str) -> PolicyException:
    where = _at(name, document)
    metadata = _require(document, "metadata", dict, where)
    spec = _require(document, "spec", dict, where)
    policies = _require(spec, "policies", list, _at(name, spec))  # type: ignore[arg-type]
    reason = _require(spec, "reason", str, _at(name, spec))  # type: ignore[arg-type]
    expires = _timestamp(spec.get("expires"), _at(name, spec, "expires"))
    match = _selector(spec.get("match"), _at(name, spec, "match"))
    if match.empty:
        raise PolicyError(
            f"{_at(name, spec, 'match')}: an exception must `match` specific objects "
            "(namespaces, names, kinds or labels)"
        )
    return PolicyException(
        str(metadata.get("name") or "?"),
        where,
        frozenset(map(str, policies)),
        frozenset(map(str, spec.get("controls") or [])),
        match,
        reason,
        expires,
    )


def _timestamp(value: Any, where: str) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    else:
        try:
            parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise PolicyError(f"{where}: `expires` is required, as a time such as 2026-12-31T00:00:00Z") from None
    if parsed.tzinfo is None:
        raise PolicyError(f"{where}: `expires` needs a time zone, such as a trailing Z for UTC")
    return parsed.astimezone(UTC)


def _unique(named: Iterable[tuple[str, str]]) -> None:
    seen: dict[str, str] = {}
    for name, origin in named:
        if name in seen:
            raise PolicyError(f"{origin}: policy {name} is already defined at {seen[name]}")
        seen[name] = origin
