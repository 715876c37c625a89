"""Reading ``access/``: escalation policies (all must load, or none counts) and grants (each on its own:
a broken grant file is denied with its file and line, and leaves every other grant alone).

Only regular files are read: a symbolic link anywhere under ``access/`` is refused, since its target could
change in a commit that touches nothing under ``access/`` and so is never reviewed as a grant or policy.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable
from pathlib import Path

import yaml

from gitopsguard.documents.lines import Lined, read_documents
from gitopsguard.errors import GitOpsGuardError, PolicyError
from gitopsguard.grants import fields as f
from gitopsguard.grants.fields import MAX_DURATION, duration
from gitopsguard.grants.model import EscalationPolicy, Grant, People, RoleRule
from gitopsguard.model import API_VERSION

__all__ = ["GRANT_DIR", "MAX_DURATION", "POLICY_DIR", "duration", "load_escalation_policies", "load_grants"]

POLICY_DIR, GRANT_DIR = "access/policies", "access/grants"
MAX_FILE_BYTES = 64 * 1024  # a grant or policy is a few hundred bytes
MAX_GRANTS_PER_FILE = 10  # one request; every grant is remembered in the state ConfigMap, which is bounded
MAX_GRANTS = 500  # in the whole repository, for the same reason
MAX_GRANT_BYTES = 192 * 1024  # what the names of all grants (name, path, policy, subject, role, namespace) may take
MAX_APPROVALS = 20
MAX_DEPTH, MAX_NODES = 32, 5000
_EventLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
FileText = tuple[str, str | PolicyError]  # (path in the repository, its text or why it cannot be read)


def _yaml_files(root: Path, folder: str) -> list[FileText]:
    """Every .yaml/.yml file under ``folder`` (sorted), with its text or the reason it is refused."""
    for part in (Path(folder).parts[0], folder):
        if (root / part).is_symlink():
            return [(part, PolicyError(f"{part}: is a symbolic link; {folder}/ must be a real folder"))]
    if not (root / folder).is_dir():
        return []
    found: list[FileText] = []
    for top, dirs, files in os.walk(root / folder):
        for entry in sorted(dirs + files):
            path = Path(top) / entry
            name = path.relative_to(root).as_posix()
            if f.has_control(name):  # it would reach the audit log and Slack as it is
                shown = repr(name)[1:-1]
                found.append((shown, PolicyError(f"{shown}: file names with control characters are refused")))
            elif path.is_symlink():
                found.append((name, PolicyError(f"{name}: is a symbolic link; grants and policies are read only "
                                                "from regular files (a link's target escapes review)")))  # fmt: skip
            elif entry in files and path.suffix in (".yaml", ".yml"):
                found.append((name, _read(path, name)))
    return sorted(found, key=lambda item: item[0])


def _read(path: Path, name: str) -> str | PolicyError:
    try:
        info = path.lstat()
        if not stat.S_ISREG(info.st_mode):
            return PolicyError(f"{name}: not a regular file")
        if info.st_size > MAX_FILE_BYTES:
            return PolicyError(f"{name}: {info.st_size} bytes, more than the {MAX_FILE_BYTES} a grant or policy needs")
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        return PolicyError(f"{name}: cannot be read: {error.strerror}")


def _check_shape(name: str, text: str, kind: str) -> None:
    """Refuse, before building anything, what no grant or policy needs: aliases (the exponential "billion
    laughs"), deep nesting (seconds of recursion in the parser) and huge numbers of nodes. One pass over
    libyaml's events, which also reports invalid YAML with its line."""
    depth = nodes = 0
    try:
        for event in yaml.parse(text, Loader=_EventLoader):
            line = f"{name}:{event.start_mark.line + 1 if event.start_mark else 1}"
            if isinstance(event, yaml.AliasEvent):
                raise PolicyError(f"{line}: aliases (*name) are not allowed in a {kind}")
            depth += isinstance(event, yaml.CollectionStartEvent) - isinstance(event, yaml.CollectionEndEvent)
            nodes += isinstance(event, yaml.CollectionStartEvent | yaml.ScalarEvent)
            if depth > MAX_DEPTH or nodes > MAX_NODES:
                raise PolicyError(f"{line}: nested deeper than {MAX_DEPTH} or more than {MAX_NODES} values; "
                                  f"this is not a {kind}")  # fmt: skip
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        raise PolicyError(f"{name}:{mark.line + 1 if mark else 1}: not valid YAML: {error.problem}") from error
    except yaml.YAMLError as error:
        raise PolicyError(f"{name}: not valid YAML: {error}") from error


def _docs(name: str, text: str, kind: str) -> list[tuple[str, Lined]]:
    _check_shape(name, text, kind)
    try:
        found = read_documents(name, text)
    except RecursionError:
        raise PolicyError(f"{name}: nested too deeply to be a {kind}") from None
    out = []
    for line, doc in found:
        where = f"{name}:{line}"
        if doc.get("kind") != kind or doc.get("apiVersion") != API_VERSION:
            raise PolicyError(f"{where}: expected apiVersion {API_VERSION}, kind {kind}")
        out.append((where, doc))
    return out


def load_escalation_policies(root: Path) -> dict[str, EscalationPolicy]:
    """The escalation policies in the working tree at ``root``; PolicyError naming the file at the first fault."""
    return parse_escalation_policies(_yaml_files(root, POLICY_DIR))


def parse_escalation_policies(files: Iterable[FileText]) -> dict[str, EscalationPolicy]:
    """The escalation policies in the given (path, text) pairs; PolicyError naming the file at the first fault."""
    policies: dict[str, EscalationPolicy] = {}
    for name, text in files:
        if isinstance(text, PolicyError):
            raise text
        for where, doc in _docs(name, text, "EscalationPolicy"):
            policy = _policy(doc, where, name)
            if policy.name in policies:
                raise PolicyError(f"{where}: escalation policy {policy.name} is already defined at "
                                  f"{policies[policy.name].origin}")  # fmt: skip
            policies[policy.name] = policy
    return policies


def _people(node: Lined, key: str, name: str) -> People:
    people = f.mapping(node, key, name, required=False)
    return People(f.strings(people, "users", name), f.strings(people, "groups", name))


def _role_rule(rule: object, spec: Lined, name: str) -> RoleRule:
    if not isinstance(rule, Lined):
        raise PolicyError(f"{f.at(spec, 'roles', name)}: each of spec.roles must be a mapping with kind and name")
    kind, role = f.choice(rule, "kind", name, ("Role", "ClusterRole")), f.text(rule, "name", name)
    namespaces, cluster_wide = f.strings(rule, "namespaces", name), f.flag(rule, "clusterWide", name, False)
    if not namespaces and not cluster_wide:
        raise PolicyError(f"{f.at(rule, 'name', name)}: role {role} needs namespaces, or clusterWide: true")
    if cluster_wide and kind == "Role":
        raise PolicyError(
            f"{f.at(rule, 'clusterWide', name)}: a Role cannot be granted cluster-wide; use a ClusterRole"
        )
    return RoleRule(kind, role, namespaces, cluster_wide)


def _policy(doc: Lined, where: str, name: str) -> EscalationPolicy:
    policy_name = f.text(f.mapping(doc, "metadata", name), "name", name)
    spec = f.mapping(doc, "spec", name)
    rules = spec.get("roles")
    if not isinstance(rules, list) or not rules or len(rules) > f.MAX_ITEMS:
        raise PolicyError(f"{f.at(spec, 'roles', name)}: spec.roles must list at least one role")
    roles = tuple(_role_rule(rule, spec, name) for rule in rules)
    approvers = _people(spec, "approvers", name)
    if not approvers.users and not approvers.groups:
        raise PolicyError(f"{f.at(spec, 'approvers', name)}: spec.approvers must name users or groups")
    return EscalationPolicy(policy_name, where, _people(spec, "requesters", name), approvers,
                            f.count(spec, "approvals", name, 1, most=MAX_APPROVALS), roles,
                            f.duration_field(spec, "maxDuration", name, "1h"),
                            f.flag(spec, "reasonRequired", name, True))  # fmt: skip


def load_grants(root: Path, blob_of: Callable[[str], str]) -> tuple[list[Grant], list[tuple[str, str]]]:
    """(grants, [(file:line, why it cannot be read)]); ``blob_of(path)`` gives a file's git blob id.
    Nothing but a broken entry comes of a bad file: every fault of one file stays with that file."""
    grants, broken = [], []
    for name, text in grant_files(root):
        found, bad = load_grant_file(name, text, blob_of)
        grants += found
        broken += bad
    grants, twice = one_name_one_grant(grants)
    return grants, broken + twice


def grant_files(root: Path) -> list[FileText]:
    """(path, text) of every grant file, or (path, why it cannot be read), so that each is read on its own."""
    return _yaml_files(root, GRANT_DIR)


def load_grant_file(
    name: str, text: str | PolicyError, blob_of: Callable[[str], str]
) -> tuple[list[Grant], list[tuple[str, str]]]:
    """The grants of one file, and [(file:line, why)] for the documents of it that cannot be read. A file of more
    than MAX_GRANTS_PER_FILE documents, or whose documents repeat a metadata.name, is refused whole: nothing of
    it is decided (a name is one grant; which of two documents would be "it" is not for us to guess)."""
    grants, broken = [], []
    try:
        if isinstance(text, PolicyError):
            raise text
        docs = _docs(name, text, "Grant")
        if len(docs) > MAX_GRANTS_PER_FILE:
            raise PolicyError(f"{name}: {len(docs)} grants, more than the {MAX_GRANTS_PER_FILE} one file may hold; "
                              "split the request into several files")  # fmt: skip
    except PolicyError as error:
        return [], [(name, str(error))]
    for index, (where, doc) in enumerate(docs):
        try:
            grants.append(_grant(doc, where, name, blob_of, index))
        except f.FieldError as error:
            broken.append((error.where, str(error)))
        except GitOpsGuardError as error:  # the blob id could not be read, say
            broken.append((where, f"{where}: {error}"))
    if problem := repeated_names(grants):
        return [], [(name, problem)]
    return grants, broken


def one_name_one_grant(grants: list[Grant]) -> tuple[list[Grant], list[tuple[str, str]]]:
    """(grants, [(file:line, why)]): a name defined in more than one file is refused in every one of them."""
    files: dict[str, set[str]] = {}
    for grant in grants:
        files.setdefault(grant.name, set()).add(grant.path)
    kept = [g for g in grants if len(files[g.name]) == 1]
    broken = [(g.origin, f"{g.origin}: grant {g.name} is also defined in {', '.join(sorted(files[g.name] - {g.path}))}"
                         "; a name is one grant: rename or remove one of them in a new pull request")
              for g in grants if len(files[g.name]) > 1]  # fmt: skip
    return kept, broken


def repeated_names(grants: list[Grant]) -> str:
    """Why these grants cannot all be decided (a metadata.name used by more than one of them); "" when they can."""
    seen: dict[str, Grant] = {}
    for grant in grants:
        if (first := seen.setdefault(grant.name, grant)) is not grant:
            return (
                f"{grant.origin}: grant {grant.name} is defined by more than one document (also at "
                f"{first.origin}); a name is one grant: give each its own name, in a new pull request"
            )
    return ""


def _grant(doc: Lined, where: str, name: str, blob_of: Callable[[str], str], index: int) -> Grant:
    grant_name = f.text(f.mapping(doc, "metadata", name), "name", name)
    spec = f.mapping(doc, "spec", name)
    subject, role = f.mapping(spec, "subject", name), f.mapping(spec, "role", name)
    return Grant(grant_name, name, where, f.text(spec, "policy", name),
                 f.choice(subject, "kind", name, ("User", "Group")), f.text(subject, "name", name),
                 f.choice(role, "kind", name, ("Role", "ClusterRole")), f.text(role, "name", name),
                 f.text(spec, "namespace", name, required=False), f.duration_field(spec, "duration", name),
                 f.text(spec, "reason", name, required=False, free=True), blob_of(name), index)  # fmt: skip
