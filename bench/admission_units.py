"""What judging by every Unit's own policies costs admission (issue 19), with 1,000 governed Units.

- one request's judgement (``admission.review.validate``), before (the root's policies alone) and after (the
  ``Judgement`` with the governance of 1,000 Units, each adding one Pod rule in a namespace of its own): a Pod
  in a governed namespace, and one in a namespace no Unit targets;
- what each request adds to reach that Judgement (``AppliedPolicies.get``: made once per change, then reused);
- the follower of the Units' inventories (``scan/following.UnitsFollower``) on a real git repository of 1,000
  Units: its first round (render the root, read 1,000 policy folders), a round at rest (nothing read), and a
  round after one Unit applied a new commit (one folder read).

    PYTHONPATH=$PWD .venv/bin/python bench/admission_units.py [--repeat 2000]

No cluster (the inventories' heads are given as data, as the watch would hold them). Prints medians in
milliseconds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gitopsguard.admission.applied import AppliedPolicies
from gitopsguard.admission.review import Judgement, validate
from gitopsguard.policy import DenyLevel, parse_policies
from gitopsguard.reconcile import Unit
from gitopsguard.scan.following import Head, UnitsFollower
from gitopsguard.scan.governed import Governed
from gitopsguard.source import GitSource, SourceSpec
from tests.admissionreview import BASELINE, MAGTAPE, request_of
from tests.gitrepo import Upstream
from tests.unit.units_policies_repo import READ_ONLY_ROOT, pod

UNITS = 1000
UNIT = "apiVersion: gitopsguard.io/v1alpha1\nkind: Unit\nmetadata: {{name: app, namespace: team-{i}}}\n" \
       "spec: {{path: teams/t{i}/app, policiesPath: teams/t{i}/policies}}\n"  # fmt: skip


def median_ms(work: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def once_ms(work: Callable[[], object]) -> float:
    start = time.perf_counter()
    work()
    return (time.perf_counter() - start) * 1000


def repository(where: Path) -> tuple[Upstream, str]:
    upstream = Upstream(where)
    upstream.write("root/units.yaml", "---\n".join(UNIT.format(i=i) for i in range(UNITS)))
    upstream.write("policies/pss.yaml", BASELINE)
    upstream.write("policies/magtape.yaml", MAGTAPE)
    for i in range(UNITS):
        upstream.write(f"teams/t{i}/policies/ro.yaml", READ_ONLY_ROOT)
        upstream.write(f"teams/t{i}/app/cm.yaml", f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c{i}}}\n")
    return upstream, upstream.commit()


def heads(root: Unit, commit: str, moved: dict[int, str] | None = None) -> dict[str, Head]:
    found = {root.name: Head(commit, root.settings)}
    for i in range(UNITS):
        applied = Unit("x", f"teams/t{i}/app", f"team-{i}", policies_path="policies",
                       own_policies_path=f"teams/t{i}/policies").settings  # fmt: skip
        found[f"team-{i}.app"] = Head((moved or {}).get(i, commit), applied)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=2000)
    repeat = parser.parse_args().repeat
    with tempfile.TemporaryDirectory() as temp:
        upstream, commit = repository(Path(temp) / "git")
        source = GitSource(SourceSpec(upstream.url, "main"), Path(temp) / "replica")
        source.fetch(last_applied=None)
        root = Unit("root", "root", "default", policies_path="policies")
        follower = UnitsFollower(root, source, Governed())
        first = once_ms(lambda: follower.follow_once(commit, heads(root, commit)))
        print(f"follower, first round ({UNITS} Units read): {first:.0f} ms")
        at_rest = heads(root, commit)
        print(f"follower, a round at rest (reads {follower.reads} so far): "
              f"{median_ms(lambda: follower.follow_once(commit, at_rest), 20):.2f} ms")  # fmt: skip
        upstream.write("teams/t7/policies/ro.yaml", READ_ONLY_ROOT.replace("SHOP002", "SHOP003"))
        second = upstream.commit()
        before = follower.reads
        print(f"follower, one Unit applied a new commit: "
              f"{once_ms(lambda: follower.follow_once(commit, heads(root, commit, {7: second}))):.0f} ms "
              f"({follower.reads - before} read)")  # fmt: skip
        platform = parse_policies({"policies/pss.yaml": BASELINE, "policies/magtape.yaml": MAGTAPE})
        applied = AppliedPolicies(DenyLevel.LOW, units=follower)
        applied.offer(platform, commit)
        applied._units_read = True  # as the follower's first round leaves it
        after = applied.get()
        if after is None or after.governance is None or len(after.governance.by_namespace) != UNITS:
            raise SystemExit(f"expected {UNITS} governed namespaces")
        root_only = Judgement(platform, DenyLevel.LOW, commit)
        governed, elsewhere = request_of(pod("team-500", read_only=False)), request_of(pod("nobody", read_only=False))
        at = datetime.now(UTC)
        print(f"one request, root only (before): "
              f"{median_ms(lambda: validate(governed, root_only, now=at, namespace=None), repeat):.3f} ms")  # fmt: skip
        for what, request in (("governed namespace", governed), ("namespace no Unit targets", elsewhere)):
            took = median_ms(lambda r=request: validate(r, applied.get(), now=at, namespace=None), repeat)
            print(f"one request, {what} (after): {took:.3f} ms")
        print(f"AppliedPolicies.get, per request: {median_ms(applied.get, repeat * 10) * 1000:.2f} us")


if __name__ == "__main__":
    main()
