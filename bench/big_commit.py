"""What a 10 MB YAML commit costs before it is refused (issue 21.10: refused within 10 s, RSS under 300 MB).

    .venv/bin/python bench/big_commit.py

Commits 10 MB of YAML to a real git repository in several shapes (one file; three files of List items;
three files of many small documents; three files of one dense document each; aliases), then renders the
checkout in a fresh process per shape, as a pass does, and prints the error, the time to it and the
process's peak RSS. No cluster needed. Each shape passes when it is refused in under 10 s with RSS under
300 MB; the script exits 1 if any does not.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.gitrepo import Upstream

SIZE = 10_000_000
ITEM = "- {apiVersion: v1, kind: ConfigMap, metadata: {name: cm-%d, namespace: shop}, data: {k: v}}\n"
DOC = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm-%d, namespace: shop}\ndata: {k: v}\n---\n"


def _repeat(template: str, size: int, start: int = 0) -> str:
    parts, total, n = [], 0, start
    while total < size:
        parts.append(template % n)
        total += len(parts[-1])
        n += 1
    return "".join(parts)


def shapes() -> dict[str, dict[str, str]]:
    third = SIZE // 3
    lists = {f"apps/list-{i}.yaml": "apiVersion: v1\nkind: List\nitems:\n" + _repeat(ITEM, third, i * 10**6)
             for i in range(3)}  # fmt: skip
    head = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: d-NUMBER}\ndata:\n  k: ["
    dense = {f"apps/dense-{i}.yaml": head.replace("NUMBER", str(i)) + "{a: 1}, " * (third // 8) + "]\n"
             for i in range(3)}  # fmt: skip
    laughs = (
        "a: &a ["
        + ",".join(["x"] * 20)
        + "]\n"
        + "".join(f"{n}: &{n} [{','.join([f'*{p}'] * 20)}]\n" for p, n in zip("abcdefgh", "bcdefghi", strict=True))
    )
    return {
        "one 10 MB file (a List)": {"apps/big.yaml": "apiVersion: v1\nkind: List\nitems:\n" + _repeat(ITEM, SIZE)},
        "3 files of List items": lists,
        "3 files of small documents": {f"apps/docs-{i}.yaml": _repeat(DOC, third, i * 10**6) for i in range(3)},
        "3 files, one dense document each": dense,
        "aliases (billion laughs, 20 wide)": {"apps/laughs.yaml": "apiVersion: v1\nkind: ConfigMap\n"
                                              "metadata: {name: l}\ndata:\n" + laughs},
    }  # fmt: skip


MEASURE = """
import json, sys, time
from pathlib import Path
from gitopsguard.errors import GitOpsGuardError
from gitopsguard.render import render
start = time.monotonic()
try:
    outcome = f"rendered {len(render(Path(sys.argv[1]), 'apps').manifests)} objects"
except GitOpsGuardError as error:
    outcome = str(error).splitlines()[0][:110]
# VmHWM is this process's own peak; ru_maxrss would carry the parent's over the exec
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"outcome": outcome, "seconds": time.monotonic() - start, "rss_mb": hwm / 1024}))
"""


def measure(checkout: Path) -> dict[str, object]:
    root = str(Path(__file__).resolve().parents[1])
    done = subprocess.run([sys.executable, "-c", MEASURE, str(checkout)], capture_output=True, text=True,
                          env={"PYTHONPATH": root, "PATH": "/usr/bin:/bin"}, check=True, timeout=600)  # fmt: skip
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    failed = 0
    for name, files in shapes().items():
        with tempfile.TemporaryDirectory() as directory:
            upstream = Upstream(Path(directory))
            for relative, text in files.items():
                upstream.write(relative, text)
            upstream.commit(name)
            size = sum(len(t) for t in files.values())
            result = measure(upstream.work)
        ok = (
            str(result["outcome"]).startswith("apps/")
            and float(result["seconds"]) < 10
            and float(result["rss_mb"]) < 300
        )  # type: ignore[arg-type]
        failed += not ok
        print(
            f"{'met ' if ok else 'MISS'} {name:36} {size / 1e6:5.1f} MB  {float(result['seconds']):6.2f} s  "  # type: ignore[arg-type]
            f"{float(result['rss_mb']):6.0f} MB RSS  {result['outcome']}"
        )  # type: ignore[arg-type]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
