"""Issue 20: verifying 1,000 new commits (100 merges of 10 signed commits each) takes under 2 s in
signed-merge mode, and a pass over an already-verified head adds no git work.

Builds a real repository (ed25519 keys from ssh-keygen, every commit signed by git; about 20 s, with
progress), then times a cold ``Reviewer.verify`` over the whole range (a fresh reviewer: nothing cached)
and a second call for the same head, counting the git processes each one starts.

    PYTHONPATH=$PWD .venv/bin/python bench/review_range.py [--merges 100] [--commits 10] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.reviewrepo import ReviewRepo

_real_run = subprocess.run
calls = [0]


def counting_run(*args: Any, **kwargs: Any) -> Any:
    command = args[0] if args else kwargs.get("args")
    if isinstance(command, list) and command and command[0] == "git":
        calls[0] += 1
    return _real_run(*args, **kwargs)


def build(repo: ReviewRepo, merges: int, commits: int) -> str:
    for merge in range(merges):
        repo.git("checkout", "-q", "-b", f"b{merge}", "main", person="alice")
        for commit in range(commits):
            repo.write(f"apps/team{merge}/c{commit}.yaml", f"value: {merge}-{commit}\n")
            repo.git("add", "-A", person="alice")
            repo.git("commit", "-q", "-S", "-m", f"change {merge}-{commit}", person="alice")
        repo.git("checkout", "-q", "main", person="carol")
        repo.merge("carol", f"b{merge}")
        if merge % 10 == 9:
            print(f"  built {merge + 1} merges", file=sys.stderr, flush=True)
    return repo.head()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--merges", type=int, default=100)
    parser.add_argument("--commits", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        repo = ReviewRepo(Path(tmp))
        print(f"building {options.merges} merges of {options.commits} signed commits ...", file=sys.stderr)
        head = build(repo, options.merges, options.commits)
        count = len(repo.git("rev-list", f"{repo.base}..{head}").split())
        subprocess.run = counting_run  # type: ignore[assignment]
        cold = []
        for _ in range(options.rounds):
            reviewer = repo.reviewer()  # nothing cached
            calls[0] = 0
            started = time.perf_counter()
            review = reviewer.verify(repo.work, repo.base, head)
            cold.append(time.perf_counter() - started)
            cold_calls = calls[0]
        calls[0] = 0
        started = time.perf_counter()
        reviewer.verify(repo.work, repo.base, head)
        again, again_calls = time.perf_counter() - started, calls[0]
    median = statistics.median(cold)
    print(f"{count} commits, {len(review.approved)} first-parent steps verified")
    print(f"cold verify: {', '.join(f'{t:.2f}' for t in cold)} s (median {median:.2f} s, target < 2 s: "
          f"{'met' if median < 2 else 'NOT met'}); {cold_calls} git processes")  # fmt: skip
    print(f"same head again: {again * 1000:.2f} ms, {again_calls} git processes (target 0)")
    return 0 if median < 2 and again_calls == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
