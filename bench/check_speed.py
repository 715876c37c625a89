"""Issue 5's offline-check numbers: gitopsguard check against checkov's Kubernetes checks, same files, same run.

    .venv/bin/python bench/check_speed.py [--objects 5000] [--checkov PATH]

Writes 5,000 manifests (Deployments, StatefulSets, CronJobs, Pods, Services, ConfigMaps, RoleBindings) into
50 files, then times:
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
    return {"name": f"c{i}", "image": f"registry.example/app:{i}",
            "securityContext": {"privileged": risky, "allowPrivilegeEscalation": not risky},
            "resources": {"limits": {"cpu": "1", "memory": "256Mi"}} if i % 2 else {},
            "ports": [{"containerPort": 8080, **({"hostPort": 8080} if risky else {})}]}  # fmt: skip


def pod_spec(i: int) -> dict[str, Any]:
    return {"containers": [container(i), container(i + 1)], "initContainers": [container(i + 2)],
            "volumes": [{"name": "d", "emptyDir": {}}, *([{"name": "h", "hostPath": {"path": "/"}}] if i % 5 == 0 else [])]}  # fmt: skip


def manifest(i: int) -> dict[str, Any]:
    meta = {"name": f"obj-{i}", "namespace": f"team-{i % 20}", "labels": {"app": f"a{i}"}}
    template = {"metadata": {"labels": {"app": f"a{i}"}}, "spec": pod_spec(i)}
    kind = i % 7
    if kind == 0:
        return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta,
                "spec": {"replicas": 2, "selector": {"matchLabels": {"app": f"a{i}"}}, "template": template}}  # fmt: skip
    if kind == 1:
        return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": meta,
                "spec": {"serviceName": "s", "selector": {"matchLabels": {"app": f"a{i}"}}, "template": template}}  # fmt: skip
    if kind == 2:
        return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": meta,
                "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": template}}}}  # fmt: skip
    if kind == 3:
        return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": pod_spec(i)}
    if kind == 4:
        return {"apiVersion": "v1", "kind": "Service", "metadata": meta,
                "spec": {"type": "NodePort", "selector": {"app": f"a{i}"}, "ports": [{"name": "http", "port": 443}]}}  # fmt: skip
    if kind == 5:
        return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"k": str(i)}}
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [{"kind": "User", "name": f"u{i}"}]}  # fmt: skip


def write_corpus(directory: Path, count: int, files: int = 50) -> None:
    per_file = count // files
    for f in range(files):
        docs = [manifest(f * per_file + j) for j in range(per_file)]
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
    args = parser.parse_args()
    gitopsguard = str(ROOT / ".venv" / "bin" / "gitopsguard")
    checkov = checkov_binary(args.checkov)
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp)
        write_corpus(corpus, args.objects)
        ours = [gitopsguard, "check", ".", *(x for p in PACKS for x in ("--pack", p)), "--format", "json"]
        ours_s, out = timed(ours, corpus)
        report = json.loads(out)
        theirs = [checkov, "-d", ".", "--framework", "kubernetes", "--quiet", "--compact", "-o", "json"]
        theirs_s, their_out = timed(theirs, corpus)
        one_core_s, _ = timed(["taskset", "-c", "0", *ours], corpus) if shutil.which("taskset") else (ours_s, "")
    failed = _checkov_failures(their_out)
    print(f"objects: {report['summary']['objects']}, gitopsguard findings: {report['summary']['findings']}, "
          f"checkov failed checks: {failed}")  # fmt: skip
    print(f"gitopsguard check (all packs):   {ours_s:6.2f} s")
    print(f"checkov (kubernetes framework):  {theirs_s:6.2f} s")
    print(f"speed-up: {theirs_s / ours_s:.1f}x (target >= 10x)")
    print(f"one core (taskset -c 0): {one_core_s:.2f} s = {args.objects / one_core_s:,.0f} objects/s (target >= 2,000)")


def _checkov_failures(output: str) -> int:
    try:
        parsed = json.loads(output)
    except ValueError:
        return -1
    reports = parsed if isinstance(parsed, list) else [parsed]
    return sum(int(r.get("summary", {}).get("failed", 0)) for r in reports if isinstance(r, dict))


if __name__ == "__main__":
    main()
