"""Issue 5's offline-check numbers: gitopsguard check against checkov's Kubernetes checks, same files, same run.

    .venv/bin/python bench/check_speed.py [--objects 5000] [--corpus typical|stress|both] [--checkov PATH]

Two corpora of 5,000 manifests in 50 files each:
  * typical: what an application repository holds - Deployments with one container (most with probes,
    resources and a security context), Services, ConfigMaps, Secrets, ServiceAccounts, Ingresses, CronJobs
    and RoleBindings; about one finding per two objects with every pack on;
  * stress: every object a pod-bearing kind or a risky binding, three containers each, privileged
    containers, host ports and host paths; about 16 findings per object.
For each corpus it times:
  * `gitopsguard check DIR` with every pack (pss-baseline, pss-restricted, magtape, rbac-guard), JSON out;
  * `checkov -d DIR --framework kubernetes` (its whole Kubernetes check set), JSON out;
  * `gitopsguard check` again pinned to one core (`taskset -c 0`), for objects per second on one core.
checkov is installed into bench/.checkov-venv on first use (about a minute) unless --checkov names one.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
PACKS = ["pss-baseline", "pss-restricted", "magtape", "rbac-guard"]


def container(i: int) -> dict[str, Any]:
    risky = i % 3 == 0
    return {
        "name": f"c{i}",
        "image": f"registry.example/app:{i}",
        "securityContext": {"privileged": risky, "allowPrivilegeEscalation": not risky},
        "resources": {"limits": {"cpu": "1", "memory": "256Mi"}} if i % 2 else {},
        "ports": [{"containerPort": 8080, **({"hostPort": 8080} if risky else {})}],
    }


def pod_spec(i: int) -> dict[str, Any]:
    return {
        "containers": [container(i), container(i + 1)],
        "initContainers": [container(i + 2)],
        "volumes": [{"name": "d", "emptyDir": {}}, *([{"name": "h", "hostPath": {"path": "/"}}] if i % 5 == 0 else [])],
    }


def manifest(i: int) -> dict[str, Any]:
    meta = {"name": f"obj-{i}", "namespace": f"team-{i % 20}", "labels": {"app": f"a{i}"}}
    template = {"metadata": {"labels": {"app": f"a{i}"}}, "spec": pod_spec(i)}
    kind = i % 7
    if kind == 0:
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": meta,
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": f"a{i}"}}, "template": template},
        }
    if kind == 1:
        return {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": meta,
            "spec": {"serviceName": "s", "selector": {"matchLabels": {"app": f"a{i}"}}, "template": template},
        }
    if kind == 2:
        return {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": meta,
            "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": template}}},
        }
    if kind == 3:
        return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": pod_spec(i)}
    if kind == 4:
        return {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta,
            "spec": {"type": "NodePort", "selector": {"app": f"a{i}"}, "ports": [{"name": "http", "port": 443}]},
        }
    if kind == 5:
        return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"k": str(i)}}
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": meta,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "User", "name": f"u{i}"}],
    }


def typical(i: int) -> dict[str, Any]:
    ns, app = f"team-{i % 20}", f"app-{i // 10}"
    meta = {"name": f"{app}-{i % 10}", "namespace": ns, "labels": {"app": app, "team": f"t{i % 20}"}}
    hardened = (i // 20) % 10 < 7  # 70% of workloads are hardened
    box = {
        "name": "app",
        "image": f"registry.example/{app}:1.{i % 9}",
        "ports": [{"containerPort": 8080}],
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "1", "memory": "256Mi"}},
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}},
        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}},
        "env": [{"name": "MODE", "value": "production"}, {"name": "PORT", "value": "8080"}],
        "securityContext": {"allowPrivilegeEscalation": False, "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}}
        if hardened
        else {},
    }
    pod = {
        "metadata": {"labels": {"app": app}},
        "spec": {
            "serviceAccountName": app,
            "containers": [box],
            "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}} if hardened else {},
        },
    }
    kind = i % 20
    if kind < 7:
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": meta,
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": app}}, "template": pod},
        }
    if kind < 11:
        return {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta,
            "spec": {"selector": {"app": app}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
        }
    if kind < 15:
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": meta,
            "data": {"LOG_LEVEL": "info", "FEATURES": "a,b,c", "app.properties": "x=1\ny=2\n"},
        }
    if kind == 15:
        return {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": "Opaque", "stringData": {"k": "v"}}
    if kind == 16:
        return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta}
    if kind == 17:
        return {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": meta,
            "spec": {
                "rules": [
                    {
                        "host": f"{app}.example.com",
                        "http": {
                            "paths": [
                                {
                                    "path": "/",
                                    "pathType": "Prefix",
                                    "backend": {"service": {"name": app, "port": {"number": 80}}},
                                }
                            ]
                        },
                    }
                ]
            },
        }
    if kind == 18:
        return {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": meta,
            "spec": {
                "schedule": "0 * * * *",
                "jobTemplate": {"spec": {"template": {"spec": {**pod["spec"], "restartPolicy": "OnFailure"}}}},
            },
        }
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": meta,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
        "subjects": [{"kind": "ServiceAccount", "name": app, "namespace": ns}],
    }


def write_corpus(directory: Path, count: int, files: int = 50, make: Any = None) -> None:
    per_file = count // files
    for f in range(files):
        docs = [(make or manifest)(f * per_file + j) for j in range(per_file)]
        (directory / f"m{f:02d}.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False))


def timed(command: list[str], cwd: Path) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode not in (0, 1):
        sys.exit(f"{command[0]} failed ({done.returncode}): {done.stderr[-2000:]}")
    return elapsed, done.stdout


def checkov_binary(given: str | None) -> str:
    if given:
        return given
    venv = ROOT / "bench" / ".checkov-venv"
    if not (venv / "bin" / "checkov").exists():
        print("installing checkov into bench/.checkov-venv (about a minute)...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "checkov"], check=True)
    return str(venv / "bin" / "checkov")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", type=int, default=5000)
    parser.add_argument("--checkov", default=None)
    parser.add_argument("--corpus", choices=["typical", "stress", "both"], default="both")
    args = parser.parse_args()
    checkov = checkov_binary(args.checkov)
    for name, make in (("typical", typical), ("stress", manifest)):
        if args.corpus in (name, "both"):
            measure(name, make, args.objects, checkov)


def measure(name: str, make: Any, count: int, checkov: str) -> None:
    gitopsguard = str(ROOT / ".venv" / "bin" / "gitopsguard")
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp)
        write_corpus(corpus, count, make=make)
        ours = [gitopsguard, "check", ".", *(x for p in PACKS for x in ("--pack", p)), "--format", "json"]
        ours_s, out = timed(ours, corpus)
        report = json.loads(out)
        theirs = [checkov, "-d", ".", "--framework", "kubernetes", "--quiet", "--compact", "-o", "json"]
        theirs_s, their_out = timed(theirs, corpus)
        one_core_s, _ = timed(["taskset", "-c", "0", *ours], corpus) if shutil.which("taskset") else (ours_s, "")
    failed = _checkov_failures(their_out)
    print(
        f"== {name} corpus: {report['summary']['objects']} objects, gitopsguard findings: "
        f"{report['summary']['findings']}, checkov failed checks: {failed}"
    )
    print(f"gitopsguard check (all packs):   {ours_s:6.2f} s")
    print(f"checkov (kubernetes framework):  {theirs_s:6.2f} s")
    print(f"speed-up: {theirs_s / ours_s:.1f}x (target >= 10x)")
    print(f"one core (taskset -c 0): {one_core_s:.2f} s = {count / one_core_s:,.0f} objects/s (target >= 2,000)")


def _checkov_failures(output: str) -> int:
    try:
        parsed = json.loads(output)
    except ValueError:
        return -1
    reports = parsed if isinstance(parsed, list) else [parsed]
    return sum(int(r.get("summary", {}).get("failed", 0)) for r in reports if isinstance(r, dict))


if __name__ == "__main__":
    main()
