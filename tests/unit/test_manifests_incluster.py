"""manifests/ as shipped (`kubectl kustomize manifests/`, what `kubectl apply -k` sends) runs the controller as
PSS restricted asks, on a read-only root filesystem: every place it writes is an emptyDir (or a volume
claim), its probes are the endpoints every replica serves from the start, and the ssh host keys come from a
Secret the controller's own account cannot rewrite."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any

from gitopsguard.commands.check import command_line_packs
from gitopsguard.policy import DenyLevel, PolicySet, evaluate
from gitopsguard.render.plain import read_text
from tests.kubectl import kubectl

MANIFESTS = Path(__file__).parents[2] / "manifests"


@cache
def rendered() -> str:
    return subprocess.run([kubectl(), "kustomize", str(MANIFESTS)], capture_output=True, text=True, check=True).stdout


def objects(kind: str) -> list[dict[str, Any]]:
    return [m.body for m in read_text(rendered(), "manifests") if m.key.kind == kind]


def controller() -> tuple[dict[str, Any], dict[str, Any]]:
    (deployment,) = objects("Deployment")
    pod = deployment["spec"]["template"]["spec"]
    return pod, pod["containers"][0]


def test_every_shipped_object_passes_gitopsguards_own_pss_restricted_at_latest() -> None:
    manifests = read_text(rendered(), "manifests")
    result = evaluate(manifests, PolicySet(command_line_packs(["pss-restricted"], "latest")), now=datetime.now(UTC),
                      deny_level=DenyLevel.HIGH)  # fmt: skip
    assert [(str(r.key), f.code) for r in result.results for f in r.findings] == []
    pod, container = controller()
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 65532
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                            "capabilities": {"drop": ["ALL"]}}  # fmt: skip


def writable_mounts() -> list[PurePosixPath]:
    pod, container = controller()
    writable = {v["name"] for v in pod["volumes"] if "emptyDir" in v or "persistentVolumeClaim" in v}
    return [PurePosixPath(m["mountPath"]) for m in container["volumeMounts"]
            if m["name"] in writable and not m.get("readOnly")]  # fmt: skip


def test_everything_the_controller_writes_lies_on_a_writable_volume_root_being_read_only() -> None:
    _, container = controller()
    environment = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    options = dict(a.removeprefix("--").split("=", 1) for a in container["args"] if a.startswith("--") and "=" in a)
    written = [environment[name] for name in ("HOME", "GNUPGHOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME",
                                              "XDG_STATE_HOME", "TMPDIR")]  # fmt: skip
    written += [options[name] for name in ("workdir", "audit-log", "backup-dir")]
    mounts = writable_mounts()
    for path in map(PurePosixPath, written):
        assert any(path == mount or mount in path.parents for mount in mounts), (path, mounts)
    assert PurePosixPath("/tmp") in mounts  # Python's tempfile, git and gpg write there


def test_the_probes_ask_the_endpoints_served_from_start_and_two_replicas_elect_a_leader() -> None:
    (deployment,) = objects("Deployment")
    _, container = controller()
    assert deployment["spec"]["replicas"] == 2 and "--leader-elect" in container["args"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert "--metrics-address=:9402" in container["args"] and ports["metrics"] == 9402


def test_known_hosts_comes_from_a_secret_the_controllers_account_cannot_write() -> None:
    pod, container = controller()
    environment = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    known_hosts = PurePosixPath(environment["GITOPSGUARD_SSH_KNOWN_HOSTS"])
    (mount,) = [m for m in container["volumeMounts"] if PurePosixPath(m["mountPath"]) == known_hosts.parent]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    (secret,) = [s for s in objects("Secret") if s["metadata"]["name"] == volume["secret"]["secretName"]]
    assert mount["readOnly"] is True and known_hosts.name in secret["data"]
    assert rewriters_of(secret["metadata"]["name"]) == []


def rewriters_of(secret: str) -> list[str]:
    """The shipped roles that could change an existing Secret of this name (create cannot replace one)."""
    found = []
    for role in objects("ClusterRole") + objects("Role"):
        for rule in role.get("rules", []):
            changes = set(rule["verbs"]) & {"update", "patch", "delete", "deletecollection", "*"}
            named = rule.get("resourceNames")
            if {"secrets", "*"} & set(rule.get("resources", [])) and changes and (not named or secret in named):
                found.append(role["metadata"]["name"])
    return found


def test_the_git_key_is_readable_by_the_containers_group_and_the_known_hosts_by_all() -> None:
    pod, _ = controller()
    modes = {v["name"]: v["secret"].get("defaultMode") for v in pod["volumes"] if "secret" in v}
    assert modes["git"] == 0o440 and pod["securityContext"]["fsGroup"] == 65532  # ssh refuses a key others read
    assert modes["known-hosts"] == 0o444
