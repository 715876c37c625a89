"""Reading ``access/``: escalation policies (all must load, or none counts) and grants (each on its own:
a broken grant file is denied with its file and line, and leaves every other grant alone)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from gitopsguard.errors import PolicyError
from gitopsguard.grants.model import EscalationPolicy, Grant, People, RoleRule
from gitopsguard.model import parse_duration
from gitopsguard.policy.load import read_documents
from gitopsguard.policy.model import API_VERSION
from gitopsguard.policy.yamllines import Lined

POLICY_DIR, GRANT_DIR = "access/policies", "access/grants"


def duration(text: Any, where: str) -> timedelta:
    parsed = parse_duration(text)
    if not parsed:  # None, or zero
        raise PolicyError(f"{where}: {text!r} is not a duration such as 90s, 30m, 2h or 1d")
    return parsed


def _yaml_files(root: Path, folder: str) -> list[tuple[str, str]]:
    base = root / folder
    if not base.is_dir():
        return []
    files = sorted(p for p in base.rglob("*") if p.is_file() and p.suffix in (".yaml", ".yml"))
    return [(p.relative_to(root).as_posix(), p.read_text(encoding="utf-8", errors="replace")) for p in files]


def _docs(name: str, text: str, kind: str) -> list[tuple[str, Lined]]:
    out = []
    for line, doc in read_documents(name, text):
        where = f"{name}:{line}"
        if doc.get("kind") != kind or doc.get("apiVersion") != API_VERSION:
            raise PolicyError(f"{where}: expected apiVersion {API_VERSION}, kind {kind}")
        out.append((where, doc))
    return out


def load_escalation_policies(root: Path) -> dict[str, EscalationPolicy]:
    policies: dict[str, EscalationPolicy] = {}
    for name, text in _yaml_files(root, POLICY_DIR):
        for where, doc in _docs(name, text, "EscalationPolicy"):
            policy = _policy(doc, where)
            if policy.name in policies:
                raise PolicyError(f"{where}: escalation policy {policy.name} is already defined at "
                                  f"{policies[policy.name].origin}")  # fmt: skip
            policies[policy.name] = policy
    return policies


def _people(node: Any, where: str) -> People:
    if node is None:
        return People()
    if not isinstance(node, dict):
        raise PolicyError(f"{where}: expected users and groups")
    return People(frozenset(map(str, node.get("users") or [])), frozenset(map(str, node.get("groups") or [])))


def _policy(doc: Lined, where: str) -> EscalationPolicy:
    spec = doc.get("spec")
    name = (doc.get("metadata") or {}).get("name")
    if not isinstance(spec, dict) or not name:
        raise PolicyError(f"{where}: an EscalationPolicy needs metadata.name and spec")
    roles = []
    for rule in spec.get("roles") or []:
        if not isinstance(rule, dict) or rule.get("kind") not in ("Role", "ClusterRole") or not rule.get("name"):
            raise PolicyError(f"{where}: each of spec.roles needs kind (Role or ClusterRole) and name")
        namespaces = frozenset(map(str, rule.get("namespaces") or []))
        cluster_wide = bool(rule.get("clusterWide"))
        if not namespaces and not cluster_wide:
            raise PolicyError(f"{where}: role {rule['name']} needs namespaces, or clusterWide: true")
        if cluster_wide and rule["kind"] == "Role":
            raise PolicyError(f"{where}: a Role cannot be granted cluster-wide; use a ClusterRole")
        roles.append(RoleRule(str(rule["kind"]), str(rule["name"]), namespaces, cluster_wide))
    if not roles:
        raise PolicyError(f"{where}: spec.roles must name at least one role")
    approvers = _people(spec.get("approvers"), where)
    if not approvers.users and not approvers.groups:
        raise PolicyError(f"{where}: spec.approvers must name users or groups")
    approvals = spec.get("approvals", 1)
    if not isinstance(approvals, int) or approvals < 1:
        raise PolicyError(f"{where}: spec.approvals must be a whole number of at least 1")
    return EscalationPolicy(str(name), where, _people(spec.get("requesters"), where), approvers, approvals,
                            tuple(roles), duration(spec.get("maxDuration", "1h"), where),
                            bool(spec.get("reasonRequired", True)))  # fmt: skip


def load_grants(root: Path, blob_of: Any) -> tuple[list[Grant], list[tuple[str, str]]]:
    """(grants, [(file:line, why it cannot be read)]); ``blob_of(path)`` gives a file's git blob id."""
    grants, broken = [], []
    for name, text in grant_files(root):
        found, bad = load_grant_file(name, text, blob_of)
        grants += found
        broken += bad
    return grants, broken


def grant_files(root: Path) -> list[tuple[str, str]]:
    """(path, text) of every grant file, so that a caller can read each on its own."""
    return _yaml_files(root, GRANT_DIR)


def load_grant_file(name: str, text: str, blob_of: Any) -> tuple[list[Grant], list[tuple[str, str]]]:
    """The grants of one file, and [(file:line, why)] for the documents of it that cannot be read."""
    grants, broken = [], []
    try:
        docs = _docs(name, text, "Grant")
    except PolicyError as error:
        return [], [(name, str(error))]
    for where, doc in docs:
        try:
            grants.append(_grant(doc, where, name, str(blob_of(name))))
        except PolicyError as error:
            broken.append((where, str(error)))
    return grants, broken


def _grant(doc: Lined, where: str, path: str, blob: str) -> Grant:
    spec, name = doc.get("spec"), (doc.get("metadata") or {}).get("name")
    if not isinstance(spec, dict) or not name:
        raise PolicyError(f"{where}: a Grant needs metadata.name and spec")
    subject, role = spec.get("subject") or {}, spec.get("role") or {}
    if subject.get("kind") not in ("User", "Group") or not subject.get("name"):
        raise PolicyError(f"{where}: spec.subject needs kind (User or Group) and name")
    if role.get("kind") not in ("Role", "ClusterRole") or not role.get("name"):
        raise PolicyError(f"{where}: spec.role needs kind (Role or ClusterRole) and name")
    if not spec.get("policy"):
        raise PolicyError(f"{where}: spec.policy names the escalation policy to ask under")
    return Grant(str(name), path, where, str(spec["policy"]), str(subject["kind"]), str(subject["name"]),
                 str(role["kind"]), str(role["name"]), str(spec.get("namespace") or ""),
                 duration(spec.get("duration"), where), str(spec.get("reason") or ""), blob)  # fmt: skip
